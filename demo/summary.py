"""Print where each output of `make demo` is and what it shows, with the numbers read back from
the files themselves. Usage: python demo/summary.py DEMO_OUT SHIPPED_MODEL KNOWN_PEAKS"""

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


def regions(path):
    """(chroms, starts, ends) of a BED-like file, '#' lines skipped."""
    rows = [line.split("\t")[:3] for line in open(path) if line.strip() and not line.startswith("#")]
    return (np.array([r[0] for r in rows]), np.array([int(r[1]) for r in rows], dtype=np.int64),
            np.array([int(r[2]) for r in rows], dtype=np.int64))


def overlapping(predicted, known):
    """How many predicted regions overlap at least one known region (both as from regions())."""
    count = 0
    for chrom in np.unique(predicted[0]):
        mine = predicted[0] == chrom
        theirs = known[0] == chrom
        if not theirs.any():
            continue
        order = np.argsort(known[1][theirs])
        starts, ends = known[1][theirs][order], np.maximum.accumulate(known[2][theirs][order])
        # a known region overlaps [s, e) when it starts before e and the latest end so far passes s
        last = np.searchsorted(starts, predicted[2][mine]) - 1
        count += int(np.sum((last >= 0) & (ends[np.maximum(last, 0)] > predicted[1][mine])))
    return count


def model_facts(path):
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("deepgmap.json"))


def describe(out, shipped, known_peaks):
    path = lambda *parts: os.path.join(out, *parts)  # noqa: E731
    qc = table(path("H3K4me3.qc.tsv"))[0]
    yield "H3K4me3.narrowPeak", (f"{qc['peaks']} MACS3 peaks of the K562 H3K4me3 reads on chr22:20-21 Mb "
                                 f"(summits in H3K4me3.summits.bed; the reads cover only chr22, held out, so "
                                 f"they are not a training class here)")
    yield "H3K4me3.qc.tsv", (f"QC {qc['verdict']}: {int(qc['reads_total']):,} reads, FRiP {float(qc['frip']):.3f}, "
                             f"cFRiP {float(qc['cfrip']):.5f}; H3K4me3.qc.png plots the read fingerprint and "
                             f"these values against their thresholds; H3K4me3_mqc.json is the same for MultiQC "
                             f"(`multiqc {out}` puts FRiP and cFRiP in its report)")
    windows = read_windows_table(path("windows.tsv.gz"))
    splits = ", ".join(f"{(windows.splits == s).sum():,} {s}" for s in ("train", "valid", "test")
                       if (windows.splits == s).any())
    positives = ", ".join(f"{name} {int(windows.labels[:, i].sum()):,}" for i, name in enumerate(windows.class_names))
    yield "windows.tsv.gz", f"1 kb training windows every 300 bp ({splits}); windows with a summit: {positives}"
    model = model_facts(path("model.keras"))
    yield "model.keras", (f"{model['model']} at width {model['width_scale']} for {', '.join(model['class_names'])}, "
                          f"recipe {model['settings']['recipe']}, trained {model['state']['seconds'] / 60:.1f} min "
                          f"on chr20:1-5 Mb, best epoch {model['state']['best_epoch']} of "
                          f"{len(model['state']['history'])}")
    yield "metrics.tsv, report.html", (f"learning curves; on held-out chr22: "
                                       f"{scores(table(path('metrics.tsv')), 'valid')}")
    trained = model_facts(shipped)
    yield f"({shipped})", (f"the tracks, peaks and motifs below come from this {trained['model']} model, trained "
                           f"{trained['state']['seconds'] / 60:.0f} min on all of hg19 chr20 (chr22 held out too)")
    known = regions(known_peaks)
    for name in trained["class_names"]:
        chroms, values = track_values(path("tracks", f"{name}.bw"))
        yield f"tracks/{name}.bw", (f"probability of {name} at the genome's class balance along {', '.join(chroms)} "
                                    f"in {len(values):,} bins (mean {values.mean():.3f}, sd {values.std():.3f}, "
                                    f"max {values.max():.3f}); open it in a genome browser")
        called = regions(path("tracks", "peaks", f"{name}.narrowPeak"))
        sizes = called[2] - called[1]
        size_range = f", {sizes.min():,}-{sizes.max():,} bp" if len(sizes) else ""
        yield f"tracks/peaks/{name}.narrowPeak", (f"{len(sizes)} predicted {name} peaks{size_range}; "
                                                 f"{overlapping(called, known)} overlap a known {name} region "
                                                 f"of {known_peaks}")
    evaluation = table(path("tracks", "evaluation.tsv"))
    yield "tracks/evaluation.tsv, .html", (f"ROC and PR curves; held-out chr22: {scores(evaluation, 'valid')}; "
                                           f"train chr20: {scores(evaluation, 'train')}")
    kernels = sum(1 for line in open(path("kernels.meme")) if line.startswith("MOTIF"))
    matches = table(path("tomtom.tsv"))
    best = min(matches, key=lambda row: float(row["p_value"]))
    ctcf = [row for row in matches if "CTCF" in row["target"]]
    ctcf_text = (f"; best CTCF match {min(ctcf, key=lambda r: float(r['p_value']))['query']} ~ "
                 f"{min(ctcf, key=lambda r: float(r['p_value']))['target']} "
                 f"(q {min(float(r['q_value']) for r in ctcf):.2g})") if ctcf else "; no kernel matches CTCF"
    yield "kernels.meme, tomtom.tsv", (f"{kernels} first-layer kernels as MEME motifs matched to JASPAR 2024; "
                                       f"best match {best['query']} ~ {best['target']} (p {float(best['p_value']):.2g})"
                                       f"{ctcf_text}")
    yield "logos.html", "each kernel's logo beside its best JASPAR match"
    yield "connections.png", "the strongest links from the kernels through the convolutions to each class"


def main(argv=None):
    out, shipped, known_peaks = (argv or sys.argv[1:])[:3]
    print(f"\nDemo outputs in {out}/:")
    for name, text in describe(out, shipped, known_peaks):
        print(f"  {name:<34} {text}")


if __name__ == "__main__":
    main()
