"""Baselines that need no training, against independent computations on real data: GC content by
plain counting on sequences read with pysam, best motif matches by Biopython's PSSM scan, AUROC
and AUPRC by scikit-learn; the motif chosen for real hg19 chr20 CTCF windows is the JASPAR CTCF
cluster; predict-bigwig --evaluate --motif-db end to end."""



import numpy as np
import pysam
import pytest
from Bio import motifs as bio_motifs
from sklearn.metrics import average_precision_score, roc_auc_score

from deepgmap_core.baselines import PSEUDOCOUNT, MotifScanner, log_odds_matrices, select_motifs
from deepgmap_core.cli.predict_bigwig import main as predict_main
from deepgmap_core.genome import Genome, one_hot_windows
from deepgmap_core.motifs import read_motif_db
from deepgmap_core.peaks import merge_intervals, read_peaks
from deepgmap_core.windows import WindowsTable, read_windows_table

JASPAR = "JASPAR2024_CORE_clusters.meme"


@pytest.fixture(scope="module")
def jaspar(test_data):
    return read_motif_db(str(test_data / JASPAR))


@pytest.fixture(scope="module")
def held_out(test_data):
    """The valid windows of test-data/windows.tsv (real hg19 chr22:20-21 Mb): rows, labels and
    sequences read with pysam, independently of the suite's genome reader."""
    table = read_windows_table(str(test_data / "windows.tsv"))
    rows = np.flatnonzero(table.splits == "valid")
    with pysam.FastaFile(str(test_data / "genome.fa.gz")) as fasta:
        sequences = [fasta.fetch(chrom, int(start), int(end)).upper()
                     for chrom, start, end in zip(table.chroms[rows], table.starts[rows], table.ends[rows])]
    return table, rows, table.labels[rows], sequences


@pytest.fixture(scope="module")
def evaluation(test_data, tmp_path_factory):
    """predict-bigwig --evaluate --motif-db with the small test model, on every window of the table."""
    out = tmp_path_factory.mktemp("evaluation")
    assert predict_main(["--model", str(test_data / "model.keras"), "--genome", str(test_data / "genome.fa.gz"),
                         "--regions", str(test_data / "regions.bed"), "--outdir", str(out),
                         "--evaluate", str(test_data / "windows.tsv"),
                         "--motif-db", str(test_data / JASPAR)]) == 0
    rows = [line.rstrip("\n").split("\t") for line in open(out / "evaluation.tsv") if not line.startswith("#")]
    return out, rows


def plain_gc(sequence):
    return (sequence.count("G") + sequence.count("C")) / sum(sequence.count(base) for base in "ACGT")


def biopython_best_match(matrix, sequence):
    """Best log-odds of a (width, 4) A,C,G,T probability matrix over both strands of `sequence`
    (Biopython: uniform background; positions with N score NaN and are skipped)."""
    motif = bio_motifs.Motif(alphabet="ACGT", counts={base: matrix[:, k].tolist() for k, base in enumerate("ACGT")})
    motif.pseudocounts = PSEUDOCOUNT
    pssm = motif.pssm
    return float(np.nanmax(np.concatenate([pssm.calculate(sequence), pssm.reverse_complement().calculate(sequence)])))


def baseline_rows(rows, split, class_name):
    return {r[7]: (float(r[3]), float(r[4])) for r in rows if r[:3] == [split, "all", class_name] and r[7] != "model"}


def test_motif_scores_equal_biopython(test_data, jaspar, held_out):
    names, matrices = jaspar
    table, rows, _, sequences = held_out
    # Windows with N (the real piece's edge) among them: matches over an N do not count.
    with_n = [i for i, sequence in enumerate(sequences) if set(sequence) - set("ACGT")]
    picked = with_n[:2] + list(np.random.default_rng(1).choice(len(rows), 4, replace=False))
    widths = [len(matrix) for matrix in matrices]
    motifs = sorted({names.index(next(n for n in names if n.startswith("C055:"))), int(np.argmin(widths)),
                     int(np.argmax(widths)), *np.random.default_rng(2).choice(len(names), 5, replace=False).tolist()})
    with Genome(str(test_data / "genome.fa.gz")) as genome:
        one_hot = one_hot_windows(genome, table.chroms[rows[picked]], table.starts[rows[picked]], 1000)
    scores = MotifScanner(log_odds_matrices(matrices))(one_hot)   # all 182 motifs: several width groups
    expected = [[biopython_best_match(matrices[j], sequences[i]) for j in motifs] for i in picked]
    assert len(with_n) == 2 and len(set(widths[j] for j in motifs)) >= 4
    np.testing.assert_allclose(scores[:, motifs], expected, atol=1e-4)


def test_gc_baseline_equals_plain_counting(evaluation, held_out):
    _, rows = evaluation
    table, _, labels, sequences = held_out
    gc = np.array([plain_gc(sequence) for sequence in sequences])
    for i, name in enumerate(table.class_names):
        reported = baseline_rows(rows, "valid", name)
        # GC is a score as is: it is not flipped where the class is GC-poor.
        assert reported["gc"] == pytest.approx((roc_auc_score(labels[:, i], gc),
                                                average_precision_score(labels[:, i], gc)), abs=2e-6)
        assert reported["chance"] == pytest.approx((0.5, labels[:, i].mean()), abs=2e-6)


def test_motif_baseline_is_the_ctcf_cluster_scored_like_biopython(evaluation, held_out, jaspar):
    _, rows = evaluation
    table, _, labels, sequences = held_out
    names, matrices = jaspar
    ctcf = baseline_rows(rows, "valid", "CTCF")
    (method,) = [m for m in ctcf if m.startswith("motif:")]
    assert method.startswith("motif:C055:")   # chosen on the train chromosome chr20
    matrix = matrices[names.index(method.removeprefix("motif:"))]
    best = np.array([biopython_best_match(matrix, sequence) for sequence in sequences])
    column = table.class_names.index("CTCF")
    assert ctcf[method] == pytest.approx((roc_auc_score(labels[:, column], best),
                                          average_precision_score(labels[:, column], best)), abs=1e-4)
    # No H3K4me3 positive on the train chromosome: no motif for it, GC and chance still.
    assert set(baseline_rows(rows, "valid", "H3K4me3")) == {"gc", "chance"}


def test_evaluation_report_shows_the_baselines_beside_the_model(evaluation):
    out, rows = evaluation
    assert not [r for r in rows if r[0] == "train" and r[7] != "model"]   # baselines only where held out
    html = (out / "evaluation.html").read_text()
    assert "Beside baselines that need no training" in html and "C055:CTCF" in html


def test_best_motif_for_real_chr20_ctcf_windows_is_the_ctcf_cluster(shared_data, jaspar):
    """1 kb windows around 750 of the real chr20 CTCF regions and at 750 random places away from
    them, on the whole real chr20: of the 182 JASPAR clusters, the CTCF one ranks them best."""
    hg19 = shared_data / "hg19"
    regions = read_peaks(str(hg19 / "CTCF.chr20.bed"), "CTCF regions").by_chrom["chr20"]
    rng = np.random.default_rng(3)
    middles = ((regions.starts + regions.ends) // 2)[rng.choice(len(regions.starts), 750, replace=False)]
    with Genome(str(hg19 / "chr20.fa.gz")) as genome:
        random_starts = rng.integers(100_000, genome.lengths["chr20"] - 101_000, 3000)
        # 1 kb or more from every region: the merged regions just before and after each window.
        merged_starts, merged_ends = merge_intervals(regions.starts, regions.ends)
        after = np.searchsorted(merged_starts, random_starts)
        away = (merged_starts[np.minimum(after, len(merged_starts) - 1)] > random_starts + 2000) & \
            (merged_ends[np.maximum(after - 1, 0)] < random_starts - 1000)
        starts = np.concatenate([middles - 500, random_starts[away][:750]])
        labels = np.concatenate([np.ones(750), np.zeros(750)]).astype(np.uint8)[:, None]
        table = WindowsTable({}, ["CTCF"], np.full(1500, "chr20"), starts, starts + 1000, np.full(1500, "train"),
                             labels)
        names, matrices = jaspar
        (chosen,) = select_motifs(genome, table, np.arange(1500), names, log_odds_matrices(matrices))
    assert names[chosen].startswith("C055:")


def test_motif_db_errors_come_before_any_work(test_data, tmp_path, capsys):
    from deepgmap_core.cli.train_model import main as train_main

    bad = tmp_path / "bad.meme"
    bad.write_text("not a MEME file\n")
    common = ["--genome", str(test_data / "genome.fa.gz")]
    assert predict_main(common + ["--model", str(test_data / "model.keras"), "--outdir", str(tmp_path / "out"),
                                  "--evaluate", str(test_data / "windows.tsv"), "--motif-db", str(bad)]) == 1
    assert predict_main(common + ["--model", str(test_data / "model.keras"), "--outdir", str(tmp_path / "out"),
                                  "--motif-db", str(test_data / JASPAR)]) == 1
    assert not (tmp_path / "out").exists()
    assert train_main(common + ["--windows", str(test_data / "windows.tsv"), "--motif-db", str(bad),
                                "-o", str(tmp_path / "m.keras")]) == 1
    assert not (tmp_path / "m.keras").exists()
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 3 and "bad.meme" in errors[0] and "--motif-db needs --evaluate" in errors[1]
    assert "bad.meme" in errors[2]
