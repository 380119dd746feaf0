"""The README's main job: `make demo` runs the whole chain on test-data/ and every output it
promises exists in its format, and its closing summary names each of them; the README's UNIX
pipeline runs as written."""

import gzip
import json
import os
import re
import subprocess
import zipfile

import keras
import numpy as np
import pyBigWig
import pytest
from memelite.io import read_meme

from conftest import REPO, TEST_DATA
from deepgmap_core.models import DEFAULT_MODEL, architecture
from deepgmap_core.models.build import scaled
from deepgmap_core.models.files import load_model, read_model_info

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
GENOME_LENGTHS = {"chr20": 5_000_000, "chr22": 21_000_000}
CLASSES = ["CTCF"]                   # the demo's training class (H3K4me3's reads cover only held-out chr22)
PIPELINE_CLASSES = ["CTCF", "H3K4me3"]
SHIPPED_MODEL = TEST_DATA / "CTCF_chr20_frss_bn.keras"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    run = subprocess.run(["make", "--no-print-directory", "demo", f"DEMO_OUT={out}"], cwd=REPO,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    return out, run.stdout


def rows(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as handle:
        return [line.rstrip("\n").split("\t") for line in handle if not line.startswith("#")]


def header(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as handle:
        return next(line for line in handle if line.startswith("#") and not line.startswith("##"))[1:].split()


def check_narrowpeak(path, min_rows):
    table = rows(path)
    assert len(table) >= min_rows
    for fields in table:
        assert len(fields) == 10
        chrom, start, end, score, summit = fields[0], int(fields[1]), int(fields[2]), int(fields[4]), int(fields[9])
        assert 0 <= start < end <= GENOME_LENGTHS[chrom]
        assert 0 <= score <= 1000 and fields[5] in ".+-"
        assert summit == -1 or 0 <= summit < end - start
        [float(value) for value in fields[6:9]]


def test_peaks_and_qc(demo):
    out, _ = demo
    check_narrowpeak(out / "H3K4me3.narrowPeak", 20)
    peaks, summits = rows(out / "H3K4me3.narrowPeak"), rows(out / "H3K4me3.summits.bed")
    assert len(summits) == len(peaks)
    for peak, summit in zip(peaks, summits):
        assert int(summit[2]) - int(summit[1]) == 1 and int(summit[1]) == int(peak[1]) + int(peak[9])
    assert header(out / "H3K4me3.qc.tsv")[:2] == ["sample", "reads_total"]
    (qc,) = rows(out / "H3K4me3.qc.tsv")
    assert qc[0] == "K562_H3K4me3" and qc[1] == "17307" and "PASS" in qc
    assert (out / "H3K4me3.qc.png").read_bytes()[:8] == PNG_MAGIC


def test_multiqc_finds_the_demos_qc(demo, tmp_path):
    """`multiqc demo-output`, as the summary says, reports the sample's FRiP and cFRiP."""
    out, _ = demo
    multiqc = REPO / ".venv" / "bin" / "multiqc"
    subprocess.run([str(multiqc), "-q", str(out), "-o", str(tmp_path), "--data-format", "json"], check=True)
    table = json.loads((tmp_path / "multiqc_data" / "multiqc_data.json").read_text())["report_saved_raw_data"]
    (qc,) = rows(out / "H3K4me3.qc.tsv")
    found = table["multiqc_deepgmap_bam_to_peaks_table"]["K562_H3K4me3"]
    # the QC table's values have 6 significant digits
    assert (found["frip"], found["cfrip"]) == (pytest.approx(float(qc[3]), rel=1e-5),
                                               pytest.approx(float(qc[5]), rel=1e-5))


def test_training_windows(demo):
    out, _ = demo
    path = out / "windows.tsv.gz"
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    assert header(path) == ["chrom", "start", "end", "split"] + CLASSES
    table = np.array(rows(path), dtype=object)
    starts, ends = table[:, 1].astype(int), table[:, 2].astype(int)
    assert (ends - starts == 1000).all() and (starts % 300 == 0).all()
    assert set(table[:, 3]) == {"train", "valid"} and set(table[table[:, 3] == "valid", 0]) == {"chr22"}
    labels = table[:, 4:].astype(int)
    assert set(np.unique(labels)) == {0, 1} and labels[:, 0].sum() > 100


def test_model_metrics_and_report(demo):
    out, _ = demo
    model, info = load_model(str(out / "model.keras"))
    assert info.class_names == CLASSES and info.model == DEFAULT_MODEL
    assert info.settings["max_minutes"] > 0 and "time budget" in info.state["stop"]
    assert model.predict(np.zeros((2, 1000, 4), dtype=np.float32), verbose=0).shape == (2, len(CLASSES))
    assert isinstance(model, keras.Model)
    assert "model.weights.h5" in zipfile.ZipFile(out / "model.keras").namelist()
    metrics = rows(out / "metrics.tsv")
    assert [r[2] for r in metrics if r[0] == "best" and r[1] == "valid"] == CLASSES
    assert all(0 <= float(r[3]) <= 1 for r in metrics if r[3] != "nan")
    assert "data:image/png;base64," in (out / "report.html").read_text()
    methods = {r[-1].split(":")[0] for r in metrics if r[0] == "baseline"}
    assert methods == {"gc", "motif", "chance"}


def held_out(evaluation, method):
    (row,) = [r for r in evaluation if r[0] == "valid" and r[1] == "all" and r[2] == "CTCF"
              and r[-1].split(":")[0] == method]
    return float(row[3])


def known_ctcf_overlaps(peaks):
    known = rows(TEST_DATA / "CTCF.bed")
    return sum(any(k[0] == p[0] and int(k[1]) < int(p[2]) and int(p[1]) < int(k[2]) for k in known) for p in peaks)


def test_the_shipped_model_learnt_ctcf_beyond_the_baselines(demo):
    """The demo's predictions come from a model that learnt: on held-out chr22 its AUROC is at
    least 0.80 and above the best JASPAR motif's and GC's; its track varies; its peaks are a few
    hundred bp to a few kb and most overlap known CTCF regions."""
    out, _ = demo
    evaluation = rows(out / "tracks" / "evaluation.tsv")
    model, motif, gc = (held_out(evaluation, m) for m in ("model", "motif", "gc"))
    assert model >= 0.80 and model > motif and model > gc, (model, motif, gc)
    with pyBigWig.open(str(out / "tracks" / "CTCF.bw")) as track:
        values = np.concatenate([np.array(track.intervals(c))[:, 2] for c in ("chr20", "chr22")])
    assert values.std() > 0.02 and values.max() > 0.5
    peaks = rows(out / "tracks" / "peaks" / "CTCF.narrowPeak")
    sizes = np.array([int(p[2]) - int(p[1]) for p in peaks])
    assert len(peaks) >= 20 and sizes.min() >= 100 and sizes.max() <= 5000
    assert known_ctcf_overlaps(peaks) > len(peaks) / 2


def test_tracks_peaks_and_evaluation(demo):
    out, _ = demo
    for name in CLASSES:
        with pyBigWig.open(str(out / "tracks" / f"{name}.bw")) as track:
            assert track.isBigWig() and track.chroms() == GENOME_LENGTHS
            values = np.array(track.intervals("chr20"))[:, 2]
            assert len(values) > 10_000 and ((values >= 0) & (values <= 1)).all()
        check_narrowpeak(out / "tracks" / "peaks" / f"{name}.narrowPeak", 0)
    assert read_model_info(str(SHIPPED_MODEL)).class_names == CLASSES
    evaluation = rows(out / "tracks" / "evaluation.tsv")
    assert {(r[0], r[2]) for r in evaluation if r[1] == "all"} == {(s, c) for s in ("train", "valid") for c in CLASSES}
    assert "data:image/png;base64," in (out / "tracks" / "evaluation.html").read_text()


def test_motifs(demo):
    out, _ = demo
    motifs = read_meme(str(out / "kernels.meme"))
    assert len(motifs) >= 32
    for matrix in motifs.values():
        assert matrix.shape[0] == 4 and np.allclose(matrix.sum(axis=0), 1, atol=1e-3)
    tomtom = rows(out / "tomtom.tsv")
    assert {r[0] for r in tomtom} <= set(motifs) and all(r[1].startswith("C") for r in tomtom)
    best = {}
    for query, target, p_value, *_ in tomtom:
        best[query] = min(best.get(query, (2.0, "")), (float(p_value), target))
    assert any("CTCF" in target for _, target in best.values())   # a kernel whose best JASPAR match is CTCF
    assert (out / "logos.html").read_text().count("data:image/png;base64,") >= 2 * len(motifs)
    assert (out / "connections.png").read_bytes()[:8] == PNG_MAGIC


def test_summary_names_every_output(demo):
    out, stdout = demo
    summary = stdout[stdout.index(f"Demo outputs in {out}/:"):]
    for name in ["H3K4me3.narrowPeak", "H3K4me3.qc.tsv", "windows.tsv.gz", "model.keras", "metrics.tsv",
                 "CTCF_chr20_frss_bn.keras", "tracks/CTCF.bw", "tracks/peaks/CTCF.narrowPeak", "tracks/evaluation.tsv",
                 "kernels.meme", "logos.html", "connections.png"]:
        assert name in summary
    assert "QC PASS" in summary and "best match frss1_kernel" in summary and "best CTCF match" in summary
    assert re.search(r"\d+ overlap a known CTCF region", summary)
    # The held-out scores beside the baselines of the same windows (metrics.tsv and evaluation.tsv).
    assert summary.count("GC AUROC") >= 2 and summary.count("chance AUPRC") >= 2


def test_readme_pipeline_runs_as_written(tmp_path):
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### The same chain as a UNIX pipeline"):]
    script = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    (tmp_path / "test-data").symlink_to(TEST_DATA)
    env = {**os.environ, "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    best, motifs = run.stdout.splitlines()[:2], run.stdout.splitlines()[2]
    assert [line.split("\t")[:3] for line in best] == [["best", "valid", name] for name in PIPELINE_CLASSES]
    # the first-layer kernels of the default model at width 0.25, as MEME on stdout
    assert int(motifs) == scaled(architecture(DEFAULT_MODEL).convs[0].filters, 0.25)
    assert rows(tmp_path / "out" / "H3K4me3.qc.tsv")[0][7] == "PASS"
    assert header(tmp_path / "out" / "windows.tsv") == ["chrom", "start", "end", "split"] + PIPELINE_CLASSES
    for name in PIPELINE_CLASSES:
        with pyBigWig.open(str(tmp_path / "out" / "tracks" / f"{name}.bw")) as track:
            assert track.chroms() == GENOME_LENGTHS
