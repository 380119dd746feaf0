"""First-layer kernels as motifs: probability matrices, MEME files, and Tomtom matches.

A kernel W (width, 4 channels in A,G,C,T order) becomes a probability matrix by a softmax over
the nucleotides at each position, exp(scale * W) / sum (the original used scale 100), then is
reordered to A,C,G,T, the MEME alphabet's order.
"""

import numpy as np

from .errors import InputError
from .fileio import check_text_input, open_text, provenance_lines
from .genome import ONE_HOT_ORDER
from .reports import embedded_png, figure_bytes, html_page, pyplot

MEME_ORDER = [ONE_HOT_ORDER.index(base) for base in "ACGT"]  # the suite's one-hot columns in MEME's order
DEFAULT_SCALE = 100.0
# How far a row of a letter-probability matrix may sum from 1: rows rounded to 2 decimals are within
# 4 x 0.005; JASPAR 2024 and HOCOMOCO v12 rows are within 2e-6.
ROW_SUM_TOLERANCE = 0.02


def first_layer_kernels(model):
    """(layer name, kernels (width, 4, filters)) of the first convolution reading the one-hot input."""
    import keras  # here: motif files and Tomtom need no Keras

    from .models.layers import FRSSConv1D

    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv1D, FRSSConv1D)):
            kernel = keras.ops.convert_to_numpy(layer.kernel)
            if kernel.ndim == 3 and kernel.shape[1] == 4:
                return layer.name, kernel
            break
    raise InputError(f"model {model.name}: no first convolution over the 4 one-hot channels to read motifs from")


def auto_scale(kernels):
    """The softmax scale from the spread of the weights: 1 / their standard deviation, so that
    weights one standard deviation apart differ e-fold in probability. Measured with Tomtom on the
    shipped CTCF models (JASPAR 2024 clusters): it gives the most kernels whose best match is CTCF
    (4 of 80, 6 of 64) of the scales 1, 10, 100 and 1-5 / SD, where 100 gives none (near one-hot
    matrices) and 1 near-uniform ones that match anything."""
    return 1.0 / float(np.std(kernels))


def kernel_probabilities(kernels, scale=DEFAULT_SCALE):
    """(filters, width, 4) probability matrices in A,C,G,T order, one per kernel."""
    logits = scale * np.transpose(kernels, (2, 0, 1)).astype(np.float64)
    logits -= logits.max(axis=2, keepdims=True)
    weights = np.exp(logits)
    return (weights / weights.sum(axis=2, keepdims=True))[:, :, MEME_ORDER]


def information_content(probabilities):
    """Total information content in bits of each (width, 4) matrix against a uniform background."""
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.nansum(np.where(probabilities > 0, probabilities * np.log2(probabilities), 0), axis=-1)
    return (2 - entropy).sum(axis=-1)


def meme_text(names, matrices, nsites=100):
    """A MEME version 4 motif file (DNA, both strands, uniform background); `nsites`: one number
    for all motifs or one per motif."""
    lines = ["MEME version 4", "", "ALPHABET= ACGT", "", "strands: + -", "",
             "Background letter frequencies", "A 0.25 C 0.25 G 0.25 T 0.25", ""]
    counts = [nsites] * len(names) if np.isscalar(nsites) else nsites
    for name, matrix, nsites in zip(names, matrices, counts):
        lines += [f"MOTIF {name}", f"letter-probability matrix: alength= 4 w= {len(matrix)} nsites= {nsites} E= 0"]
        lines += [" ".join(f"{p:.6f}" for p in row) for row in matrix]
        lines.append("")
    return "\n".join(lines) + "\n"


def read_motif_db(path):
    """(names, matrices (width, 4) in A,C,G,T) of a MEME motif file, or InputError."""
    from memelite.io import read_meme

    check_text_input(path, "motif database")
    try:
        motifs = read_meme(path)
    except Exception as error:  # memelite raises plain exceptions for malformed files
        raise InputError(f"{path}: not a readable MEME motif file ({type(error).__name__}: {error})") from None
    if not motifs:
        raise InputError(f"{path}: no motifs in the MEME file")
    names = list(motifs)
    check_motif_names(path, len(names))
    matrices = [np.asarray(motifs[name]).T for name in names]
    for name, matrix in zip(names, matrices):
        check_probability_rows(path, name, matrix)
    return names, matrices


def check_motif_names(path, motifs_read):
    """InputError when two motifs of the file share a name (memelite keeps the last one of a
    name: the other would be left out of every match without a word)."""
    seen, motif_lines = set(), 0
    with open_text(path, "motif database") as handle:
        for line in handle:
            if line.startswith("MOTIF"):
                motif_lines += 1
                name = " ".join(line[5:].split())  # memelite's key: the rest of the line
                if name in seen:
                    raise InputError(f"{path}: motif {name} appears twice: motif names must be distinct")
                seen.add(name)
    if motif_lines != motifs_read:
        raise InputError(f"{path}: {motif_lines} MOTIF lines but {motifs_read} motifs read: is a matrix missing?")


def check_probability_rows(path, name, matrix):
    """InputError naming the motif and row unless each row of its letter-probability matrix
    holds probabilities summing to 1: counts, a zero row or a nan would change every Tomtom match
    and scan score without a word."""
    finite = np.isfinite(matrix).all(axis=1) & (matrix >= 0).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        raise InputError(f"{path}: motif {name}, row {row + 1}: a probability is negative or not a number "
                         f"({' '.join(f'{p:g}' for p in matrix[row])})")
    sums = matrix.sum(axis=1)
    off = np.abs(sums - 1) > ROW_SUM_TOLERANCE
    if off.any():
        row = int(np.argmax(off))
        why = ("all zeros" if sums[row] == 0 else
               f"sums to {sums[row]:g}, not 1" + (": counts? a letter-probability matrix holds probabilities"
                                                  if sums[row] > 1.5 else ""))
        raise InputError(f"{path}: motif {name}, row {row + 1}: {why}")


def benjamini_hochberg(p_values):
    flat = p_values.ravel()
    order = np.argsort(flat)
    ranked = flat[order] * len(flat) / np.arange(1, len(flat) + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    result = np.empty_like(flat)
    result[order] = np.minimum(q, 1)
    return result.reshape(p_values.shape)


def tomtom_matches(query_names, queries, target_names, targets, top=5):
    """The `top` best Tomtom matches of each query: rows (query, target, p, E, q, offset, orientation)."""
    from memelite import tomtom

    p, _, offsets, _, strands = tomtom([q.T for q in queries], [t.T for t in targets], n_jobs=1)
    q_values = benjamini_hochberg(p)
    rows = []
    for i, query in enumerate(query_names):
        for j in np.argsort(p[i], kind="stable")[:top]:
            rows.append((query, target_names[j], float(p[i, j]), float(p[i, j] * len(targets)),
                         float(q_values[i, j]), int(offsets[i, j]), "-" if strands[i, j] else "+"))
    return rows


def tomtom_table(rows, tool, command):
    """Tomtom rows as the TSV text motif-extract and discover-motifs write."""
    lines = provenance_lines(tool, command) + ["#query\ttarget\tp_value\tE_value\tq_value\toffset\torientation"]
    lines += [f"{q}\t{t}\t{p:.4g}\t{e:.4g}\t{qv:.4g}\t{o}\t{s}" for q, t, p, e, qv, o, s in rows]
    return "\n".join(lines) + "\n"


def logo_png(heights, title, ylabel):
    """PNG bytes of a sequence logo of letter heights (width, 4) in A,C,G,T order (negative ones
    drawn below the axis)."""
    import logomaker
    import pandas

    figure, axes = pyplot().subplots(figsize=(max(2.0, 0.35 * len(heights)), 1.6))
    logomaker.Logo(pandas.DataFrame(heights, columns=list("ACGT")), ax=axes, color_scheme="classic")
    axes.set(ylabel=ylabel, title=title)
    axes.title.set_fontsize(8)
    figure.tight_layout()
    return figure_bytes(figure, dpi=80)


def probability_logo_png(matrix, title):
    """PNG bytes of the information-content-scaled logo of a (width, 4) A,C,G,T probability matrix."""
    return logo_png(matrix * (2 - information_content(matrix[:, None, :]))[:, None], title, "bits")


def logos_html(names, matrices, best_matches=None):
    """A self-contained HTML page: a logo per kernel, beside the logo of its best Tomtom match.
    best_matches: dict kernel name -> (target name, target matrix (width, 4), q-value, orientation)."""
    from html import escape

    def image(matrix, title):
        return embedded_png(probability_logo_png(matrix, title), title)

    rows = []
    for name, matrix in zip(names, matrices):
        match = (best_matches or {}).get(name)
        cell = "no database given"
        if match:
            target, target_matrix, q_value, orientation = match
            if orientation == "-":
                target_matrix = target_matrix[::-1, ::-1]  # the reverse complement, as Tomtom aligned it
            cell = image(target_matrix, f"{target} ({orientation}), q {q_value:.2g}")
        rows.append(f"<tr><td>{escape(name)}<br>{information_content(matrix[None])[0]:.1f} bits</td>"
                    f"<td>{image(matrix, name)}</td><td>{cell}</td></tr>")
    return html_page("DeepGMAP kernel motifs", "<h1>First-layer kernels and their best known match</h1><table>"
                     "<tr><th>kernel</th><th>logo</th><th>best Tomtom match</th></tr>" + "".join(rows) + "</table>")
