"""Pictures and self-contained HTML pages: every figure and report of the suite is made here."""

import base64
import io
from html import escape

STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}")


def pyplot():
    """matplotlib.pyplot on the file-only backend (no display on a cluster node)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_bytes(figure, image_format="png", dpi=100):
    """The figure as PNG (or SVG) bytes; the figure is closed."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format=image_format, dpi=dpi)
    pyplot().close(figure)
    return buffer.getvalue()


def embedded_png(png, alt):
    """An <img> holding PNG bytes (a self-contained page)."""
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def html_page(title, body):
    """A self-contained HTML page around `body` (HTML), with the suite's style."""
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>\n{body}\n</body></html>\n")


def scores_table(scores_by_split):
    """AUROC, AUPRC, positives and windows per split and class, as an HTML table."""
    rows = "".join(f"<tr><td>{escape(split)}</td><td>{escape(s['class'])}</td><td>{s['auroc']:.4f}</td>"
                   f"<td>{s['auprc']:.4f}</td><td>{s['positives']:,}</td><td>{s['windows']:,}</td></tr>"
                   for split, scores in scores_by_split.items() for s in scores)
    return ("<table><tr><th>split</th><th>class</th><th>AUROC</th><th>AUPRC</th><th>positives</th>"
            f"<th>windows</th></tr>{rows}</table>")
