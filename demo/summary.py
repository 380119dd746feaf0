"""Print where each output of `make demo` is and what it shows, with the numbers read back from
the files themselves. Usage: python demo/summary.py DEMO_OUT"""

import json
import os
import sys
import zipfile

import numpy as np
import pyBigWig

from deepgmap_core.baselines import beside_baselines
from deepgmap_core.windows import read_windows_table


def table(path):
    """Rows of one of our tab-separated outputs as dicts keyed by its '#' header."""
    header, rows = None, []
    with open(path) as handle:
        for line in handle:
            fields = line.rstrip("\n").split("\t")
            if line.startswith("##"):
                continue
            if line.startswith("#"):
                header = [fields[0][1:]] + fields[1:]
            elif header:
                rows.append(dict(zip(header, fields)))
    return rows


def count_lines(path):
    with open(path) as handle:
        return sum(1 for line in handle if line.strip() and not line.startswith("#"))


def scores(rows, split):
    """AUROC and AUPRC per class of the best model in metrics.tsv, or of all chromosomes in
    evaluation.tsv, beside the baselines of the same windows (GC, the motif if train-model or
    predict-bigwig had --motif-db, chance) where the file has them."""
    chosen = [dict(r, auroc=float(r["auroc"]), auprc=float(r["auprc"])) for r in rows
              if r["split"] == split and r.get("epoch", "best") in ("best", "baseline")
              and r.get("chromosomes", "all") == "all"]
    return beside_baselines([r for r in chosen if r.get("method", "model") == "model"],
                            [r for r in chosen if r.get("method", "model") != "model"])


def track_values(path):
    """Chromosome names and the values of all bins of a bigWig."""
    with pyBigWig.open(path) as track:
        chroms = list(track.chroms())
        values = np.concatenate([np.array(track.intervals(c) or [], dtype=float).reshape(-1, 3)[:, 2] for c in chroms])
    return chroms, values


def describe(out):
    path = lambda *parts: os.path.join(out, *parts)  # noqa: E731
    qc = table(path("H3K4me3.qc.tsv"))[0]
    yield "H3K4me3.narrowPeak", (f"{qc['peaks']} MACS3 peaks of the K562 H3K4me3 reads on chr22:20-21 Mb "
                                 f"(summits in H3K4me3.summits.bed)")
    yield "H3K4me3.qc.tsv", (f"QC {qc['verdict']}: {int(qc['reads_total']):,} reads, FRiP {float(qc['frip']):.3f}, "
                             f"cFRiP {float(qc['cfrip']):.5f}; H3K4me3.qc.png plots the read fingerprint and "
                             f"these values against their thresholds")
    windows = read_windows_table(path("windows.tsv.gz"))
    splits = ", ".join(f"{(windows.splits == s).sum():,} {s}" for s in ("train", "valid", "test")
                       if (windows.splits == s).any())
    positives = ", ".join(f"{name} {int(windows.labels[:, i].sum()):,}" for i, name in enumerate(windows.class_names))
    yield "windows.tsv.gz", f"1 kb training windows every 300 bp ({splits}); windows with a summit: {positives}"
    with zipfile.ZipFile(path("model.keras")) as archive:
        model = json.loads(archive.read("deepgmap.json"))
    yield "model.keras", (f"{model['model']} at width {model['width_scale']} for {', '.join(model['class_names'])}, "
                          f"best epoch {model['state']['best_epoch']} of {len(model['state']['history'])}")
    yield "metrics.tsv, report.html", f"learning curves; best model on valid: {scores(table(path('metrics.tsv')), 'valid')}"
    for name in model["class_names"]:
        chroms, values = track_values(path("tracks", f"{name}.bw"))
        yield f"tracks/{name}.bw", (f"predicted probability of {name} along {', '.join(chroms)} in {len(values):,} "
                                    f"bins (mean {values.mean():.3f}, max {values.max():.3f}); open it in a genome browser")
        yield f"tracks/peaks/{name}.narrowPeak", f"{count_lines(path('tracks', 'peaks', f'{name}.narrowPeak'))} predicted {name} peaks"
    evaluation = table(path("tracks", "evaluation.tsv"))
    yield "tracks/evaluation.tsv, .html", (f"ROC and PR curves; train: {scores(evaluation, 'train')}; "
                                           f"valid: {scores(evaluation, 'valid')}")
    kernels = sum(1 for line in open(path("kernels.meme")) if line.startswith("MOTIF"))
    best = min(table(path("tomtom.tsv")), key=lambda row: float(row["p_value"]))
    yield "kernels.meme, tomtom.tsv", (f"{kernels} first-layer kernels as MEME motifs matched to JASPAR 2024; "
                                       f"best match {best['query']} ~ {best['target']} (p {float(best['p_value']):.2g})")
    yield "logos.html", "each kernel's logo beside its best JASPAR match"
    yield "connections.png", "the strongest links from the kernels through the convolutions to each class"


def main(argv=None):
    out = (argv or sys.argv[1:])[0]
    print(f"\nDemo outputs in {out}/:")
    for name, text in describe(out):
        print(f"  {name:<34} {text}")


if __name__ == "__main__":
    main()
