"""deepgmap-make-training-windows end to end on the example data: output format, split,
negative sampling, and the handling of bad input."""

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pysam
import pytest
from scipy.stats import ks_2samp

from deepgmap_core.cli.make_training_windows import main
from deepgmap_core.errors import InputError
from deepgmap_core.windows import read_windows_table


@pytest.fixture()
def inputs(test_data):
    return {"genome": str(test_data / "genome.fa.gz"), "ctcf": str(test_data / "CTCF.bed"),
            "h3k4me3": str(test_data / "H3K4me3.narrowPeak"), "blacklist": str(test_data / "blacklist.bed")}


def run(inputs, out, *extra):
    return main(["--genome", inputs["genome"], "--peaks", inputs["ctcf"], inputs["h3k4me3"],
                 "-o", str(out), *extra])


def test_output_has_provenance_header_and_sorted_rows(inputs, tmp_path, capsys):
    out = tmp_path / "w.tsv"
    assert run(inputs, out, "--test-chroms", "chr22", "--seed", "7") == 0
    lines = out.read_text().splitlines()
    meta = [line for line in lines if line.startswith("##")]
    header = lines[len(meta)]
    assert header == "#chrom\tstart\tend\tsplit\tCTCF\tH3K4me3"
    table = read_windows_table(str(out))
    assert table.metadata["seed"] == "7" and table.metadata["rule"] == "summit"
    assert table.metadata["test_chroms"] == "chr22" and table.metadata["genome"] == inputs["genome"]
    assert table.metadata["command"].startswith("deepgmap-make-training-windows --genome")
    assert table.metadata["one_hot_order"] == "AGCT"
    order = np.lexsort((table.starts, table.chroms))
    np.testing.assert_array_equal(order, np.arange(len(order)))
    assert list(np.unique(table.chroms)) == ["chr20", "chr22"]
    assert set(table.splits[table.chroms == "chr22"]) == {"test"}
    assert set(table.splits[table.chroms == "chr20"]) == {"train"}
    # H3K4me3 peaks are on chr22 only, in its real 20-21 Mb piece.
    assert table.labels[table.chroms == "chr22", 1].sum() > 20 and table.labels[table.chroms == "chr20", 1].sum() == 0
    stderr = capsys.readouterr().err
    assert "windows" in stderr and "CTCF" in stderr and "H3K4me3" in stderr


def test_narrowpeak_summit_column_is_used(inputs, tmp_path):
    out = tmp_path / "w.tsv"
    assert run(inputs, out, "--keep-negatives", "1") == 0
    table = read_windows_table(str(out))
    positive = table.starts[(table.labels[:, 1] == 1)]
    summits = [int(line.split("\t")[1]) + int(line.split("\t")[9])
               for line in open(inputs["h3k4me3"])]
    midpoints = [(int(line.split("\t")[1]) + int(line.split("\t")[2])) // 2 for line in open(inputs["h3k4me3"])]
    contains = lambda points: {s for s in positive for p in points if s <= p < s + 1000}
    assert contains(summits) == set(positive.tolist())
    assert contains(midpoints) != set(positive.tolist())


def test_gzip_and_stdout_outputs_hold_the_same_table(inputs, tmp_path):
    plain, packed = tmp_path / "w.tsv", tmp_path / "w.tsv.gz"
    assert run(inputs, plain) == 0 and run(inputs, packed) == 0
    with gzip.open(packed, "rt") as handle:
        packed_text = handle.read()
    strip = lambda text: [line for line in text.splitlines() if not line.startswith("##command")]
    assert strip(packed_text) == strip(plain.read_text())
    piped = subprocess.run([sys.executable, "-m", "deepgmap_core.cli.make_training_windows", "--genome",
                            inputs["genome"], "--peaks", inputs["ctcf"], inputs["h3k4me3"], "-o", "-"],
                           capture_output=True, text=True, check=True)
    assert strip(piped.stdout) == strip(plain.read_text())


def test_negative_sampling_is_seeded_and_spares_valid_and_test(inputs, tmp_path):
    tables = {}
    for name, keep, seed in (("all", "1", "1"), ("a", "0.25", "1"), ("b", "0.25", "1"), ("c", "0.25", "2")):
        out = tmp_path / f"{name}.tsv"
        assert run(inputs, out, "--valid-chroms", "chr22", "--keep-negatives", keep, "--seed", seed) == 0
        tables[name] = read_windows_table(str(out))
    full, a, b, c = tables["all"], tables["a"], tables["b"], tables["c"]
    np.testing.assert_array_equal(a.starts, b.starts)  # same seed, same rows
    assert not np.array_equal(a.starts, c.starts)      # another seed, another draw
    for sampled in (a, c):
        valid = sampled.splits == "valid"
        np.testing.assert_array_equal(sampled.starts[valid], full.starts[full.splits == "valid"])
        train_full = full.splits == "train"
        positives = full.labels[train_full].any(axis=1)
        kept_labels = sampled.labels[sampled.splits == "train"]
        assert kept_labels.any(axis=1).sum() == positives.sum()  # every train positive kept
        kept_negatives = (~kept_labels.any(axis=1)).sum()
        n, p = (~positives).sum(), 0.25
        assert abs(kept_negatives - n * p) < 5 * np.sqrt(n * p * (1 - p))
    # A chromosome's draw does not depend on the other chromosomes being present.
    out = tmp_path / "chr20_only.tsv"
    assert main(["--genome", inputs["genome"], "--peaks", inputs["ctcf"], inputs["h3k4me3"],
                 "--blacklist", inputs["blacklist"], "--keep-negatives", "0.25", "--seed", "1", "-o", str(out)]) == 0
    with_blacklist = read_windows_table(str(out))
    chr20 = with_blacklist.chroms == "chr20"
    np.testing.assert_array_equal(with_blacklist.starts[chr20], a.starts[a.chroms == "chr20"])


def test_no_split_given_is_reported(inputs, tmp_path, capsys):
    assert run(inputs, tmp_path / "w.tsv") == 0
    assert "every window is in the train split" in capsys.readouterr().err


def test_other_rules_and_window_sizes(inputs, tmp_path):
    counts = {}
    for rule in ("summit", "overlap", "any"):
        out = tmp_path / f"{rule}.tsv"
        assert run(inputs, out, "--rule", rule, "--keep-negatives", "1", "--window", "500", "--stride", "200") == 0
        table = read_windows_table(str(out))
        assert table.metadata["rule"] == rule and set(table.ends - table.starts) == {500}
        assert set(table.starts % 200) == {0}
        counts[rule] = table.labels.sum(axis=0)
    assert (counts["summit"] <= counts["any"]).all() and (counts["overlap"] <= counts["any"]).all()


def test_flanks_widen_the_rows_and_keep_the_labels_of_the_central_window(inputs, tmp_path, test_data):
    """DeepSEA's layout: 200 bp labelled windows with 400 bp of sequence on each side."""
    central, flanked = tmp_path / "central.tsv", tmp_path / "flanked.tsv"
    common = ("--window", "200", "--stride", "200", "--keep-negatives", "1", "--blacklist", inputs["blacklist"])
    assert run(inputs, central, *common) == 0 and run(inputs, flanked, *common, "--flank", "400") == 0
    plain, wide = read_windows_table(str(central)), read_windows_table(str(flanked))
    assert wide.metadata["flank"] == "400" and set(wide.ends - wide.starts) == {1000}
    lengths = dict(line.split("\t")[:2] for line in open(str(test_data / "genome.fa.gz.fai")))
    assert (wide.starts >= 0).all() and all(e <= int(lengths[c]) for c, e in zip(wide.chroms, wide.ends))
    by_window = {(c, s): tuple(l) for c, s, l in zip(plain.chroms, plain.starts, plain.labels.tolist())}
    flanked_windows = {(c, s + 400): tuple(l) for c, s, l in zip(wide.chroms, wide.starts, wide.labels.tolist())}
    # Every flanked row is a central window with the same labels; only windows whose flanks would leave
    # a chromosome are missing (the first two and the last two of each chromosome at most).
    assert all(by_window[key] == labels for key, labels in flanked_windows.items())
    assert 0 < len(by_window) - len(flanked_windows) <= 4 * 2
    assert sum(labels[0] for labels in flanked_windows.values()) > 100


def test_missing_chromosome_warns_with_count_or_fails_when_strict(inputs, tmp_path, capsys):
    peaks = tmp_path / "extra.bed"
    peaks.write_text(open(inputs["ctcf"]).read() + "chrUn_gl000220\t100\t200\nchrX\t5\t50\nchrX\t60\t90\n")
    out = tmp_path / "w.tsv"
    assert main(["--genome", inputs["genome"], "--peaks", str(peaks), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "3 record(s) on 2 chromosome(s) the genome lacks" in err and out.exists()
    out.unlink()
    assert main(["--genome", inputs["genome"], "--peaks", str(peaks), "--strict", "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{peaks}:545:" in err[0] and "genome lacks" in err[0]
    assert not out.exists()


BAD_PEAK_FILES = {
    "too_few_columns": ("chr20\t100\n", ":1: malformed BED line"),
    "text_start": ("chr20\t100\t200\nchr20\tabc\t300\n", ":2: malformed BED line"),
    "end_before_start": ("track name=x\nchr20\t500\t200\n", ":2: malformed BED line"),
    "negative_start": ("chr20\t-5\t200\n", ":1: malformed BED line"),
    "bad_summit": ("chr20\t100\t200\tp\t0\t.\t1\t1\t1\t150\n", ":1: malformed narrowPeak line"),
    "empty": ("", "empty peak file"),
    "only_comments": ("# nothing\ntrack name=none\n", "empty peak file"),
    "wrong_assembly": ("1\t100\t200\n", "no record is left"),
    "truncated_gzip": (None, "is truncated or not valid gzip"),
}


@pytest.mark.parametrize("case", sorted(BAD_PEAK_FILES))
def test_bad_peak_files_give_one_line_and_no_output(inputs, tmp_path, capsys, case):
    content, expected = BAD_PEAK_FILES[case]
    peaks = tmp_path / f"{case}.bed"
    if content is None:  # the first 300 bytes of the gzip of the real CTCF peaks
        peaks.write_bytes(gzip.compress(Path(inputs["ctcf"]).read_bytes())[:300])
    else:
        peaks.write_text(content)
    out = tmp_path / "w.tsv"
    assert main(["--genome", inputs["genome"], "--peaks", inputs["ctcf"], str(peaks), "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(peaks) in err[0] and expected in err[0], err
    assert err[0].startswith("deepgmap-make-training-windows: error:")
    assert os.listdir(tmp_path) == [peaks.name]


@pytest.mark.parametrize("args, expected", [
    (["--test-chroms", "chr20", "--valid-chroms", "chr20"], "both test and valid"),
    (["--test-chroms", "chr8"], "chr8 not in the genome"),
    (["--names", "only_one"], "1 name(s) for 2 peak file(s)"),
    (["--names", "same", "same"], "used twice"),
])
def test_bad_parameters_give_one_line_and_no_output(inputs, tmp_path, capsys, args, expected):
    out = tmp_path / "w.tsv"
    assert run(inputs, out, *args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("genome", ["missing.fa", "not_fasta.fa"])
def test_missing_or_invalid_fasta_gives_one_line_and_no_output(inputs, tmp_path, capsys, genome):
    (tmp_path / "not_fasta.fa").write_text("chr20\t1\t2\n")
    out = tmp_path / "w.tsv"
    code = main(["--genome", str(tmp_path / genome), "--peaks", inputs["ctcf"], "-o", str(out)])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and genome in err[0]
    assert not out.exists() and not [f for f in os.listdir(tmp_path) if f.endswith(".part")]


def test_command_line_entry_point_exit_codes(inputs, tmp_path):
    script = str(Path(sys.executable).parent / "deepgmap-make-training-windows")  # the installed console script
    ok = subprocess.run([script, "--help"], capture_output=True, text=True)
    assert ok.returncode == 0 and "--rule" in ok.stdout and "summit" in ok.stdout
    bad = subprocess.run([script, "--genome", str(tmp_path / "none.fa"),
                          "--peaks", inputs["ctcf"], "-o", str(tmp_path / "w.tsv")], capture_output=True, text=True)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def window_gc(genome_path, table, rows):
    """GC fraction of the A/C/G/T bases of table rows, read with pysam and counted with str.count."""
    with pysam.FastaFile(genome_path) as fasta:
        sequences = [fasta.fetch(chrom, int(start), int(end)).upper()
                     for chrom, start, end in zip(table.chroms[rows], table.starts[rows], table.ends[rows])]
    return np.array([(s.count("G") + s.count("C")) / max(sum(map(s.count, "ACGT")), 1) for s in sequences])


def test_gc_matched_negatives_have_the_positives_gc_and_the_random_number(inputs, tmp_path, capsys):
    """Train on chr20 (5 Mb): CTCF windows are GC-richer than the rest; gc-matched negatives are not."""
    tables = {}
    for mode, keep in (("random", "0.25"), ("gc-matched", "0.25"), ("random", "1")):
        out = tmp_path / f"{mode}_{keep}.tsv"
        assert main(["--genome", inputs["genome"], "--peaks", inputs["ctcf"], "--test-chroms", "chr22",
                     "--negatives", mode, "--keep-negatives", keep, "--seed", "1", "-o", str(out)]) == 0
        tables[mode, keep] = read_windows_table(str(out))
    stderr = capsys.readouterr().err
    assert "gc-matched negatives: mean GC of train positives" in stderr and "had fewer negatives" in stderr
    matched, drawn, everything = tables["gc-matched", "0.25"], tables["random", "0.25"], tables["random", "1"]
    assert matched.metadata["negatives"] == "gc-matched" and drawn.metadata["negatives"] == "random"
    statistic = {}
    for name, table in (("matched", matched), ("random", drawn)):
        train = table.splits == "train"
        positives, negatives = train & (table.labels[:, 0] == 1), train & (table.labels[:, 0] == 0)
        statistic[name] = ks_2samp(window_gc(inputs["genome"], table, positives),
                                   window_gc(inputs["genome"], table, negatives)).statistic
    assert statistic["random"] > 0.2 and statistic["matched"] < statistic["random"] / 3
    # The same positives and held-out rows; the negatives' number as expected under random sampling.
    test_rows = lambda table: table.starts[table.splits == "test"]
    np.testing.assert_array_equal(test_rows(matched), test_rows(everything))
    train_labels = lambda table: table.labels[table.splits == "train", 0]
    assert train_labels(matched).sum() == train_labels(everything).sum()
    n, p = (train_labels(everything) == 0).sum(), 0.25
    assert abs((train_labels(matched) == 0).sum() - n * p) < 5 * np.sqrt(n * p * (1 - p))


def test_gc_matched_draw_is_seeded_per_chromosome(inputs, tmp_path):
    def table(name, *extra):
        out = tmp_path / f"{name}.tsv"
        assert main(["--genome", inputs["genome"], "--peaks", inputs["ctcf"], "--negatives", "gc-matched",
                     *extra, "-o", str(out)]) == 0
        return out
    same, again, other = table("a", "--seed", "4"), table("b", "--seed", "4"), table("c", "--seed", "5")
    without_command = lambda path: [line for line in path.read_text().splitlines() if not line.startswith("##command")]
    assert without_command(same) == without_command(again)
    a, c = read_windows_table(str(same)), read_windows_table(str(other))
    assert not np.array_equal(a.starts, c.starts)
    np.testing.assert_array_equal(a.starts[a.labels[:, 0] == 1], c.starts[c.labels[:, 0] == 1])
    # chr20's draw is the same whether chr22 is sampled beside it (train) or held out.
    held_out = read_windows_table(str(table("d", "--seed", "4", "--valid-chroms", "chr22")))
    np.testing.assert_array_equal(a.starts[a.chroms == "chr20"], held_out.starts[held_out.chroms == "chr20"])
    assert set(a.splits[a.chroms == "chr22"]) == {"train"}


def test_default_negatives_are_random_and_the_rows_are_unchanged(inputs, tmp_path, test_data):
    """test-data/windows.tsv was made before --negatives existed (test-data/make_test_data.sh): the
    default and --negatives random still give it byte for byte, one provenance line more."""
    common = ["--genome", "genome.fa.gz", "--peaks", "CTCF.bed", "H3K4me3.narrowPeak", "--blacklist",
              "blacklist.bed", "--valid-chroms", "chr22", "--keep-negatives", "0.1", "--seed", "1"]
    cwd = os.getcwd()
    os.chdir(test_data)  # the stored table records relative input paths
    try:
        assert main(common + ["-o", str(tmp_path / "default.tsv")]) == 0
        assert main(common + ["--negatives", "random", "-o", str(tmp_path / "random.tsv")]) == 0
    finally:
        os.chdir(cwd)
    stored = (test_data / "windows.tsv").read_text().splitlines()
    default, random = ((tmp_path / name).read_text().splitlines() for name in ("default.tsv", "random.tsv"))
    rows = lambda lines: [line for line in lines if not line.startswith("##")]
    assert rows(default) == rows(stored) == rows(random)
    provenance = lambda lines: {line for line in lines if line.startswith("##") and not line.startswith("##command")}
    assert provenance(default) == provenance(random) and "##negatives=random" in provenance(default)
    assert provenance(stored) <= provenance(default)


@pytest.mark.parametrize("column, value, expected", [
    (1, "387600.5", "start '387600.5' is not a whole number"), (2, "-1000", "end '-1000' is not a whole number"),
    (4, "x", "a label other than 0 or 1"), (4, "-1", "a label other than 0 or 1"),
    (5, "2", "a label other than 0 or 1"),
    (3, "tran", "a split other than train, valid, test"), (2, "86500", "a window width unlike the first row's")])
def test_a_bad_cell_of_the_real_windows_table_names_its_line(test_data, tmp_path, column, value, expected):
    """Every reader of a windows table (train-model, predict-bigwig --evaluate, the benchmarks)
    gets these checks: a cell make-training-windows would never write is refused with the file
    and line, not read as a wrong number or a traceback."""
    lines = (test_data / "windows.tsv").read_text().splitlines(keepends=True)
    row = next(i for i, line in enumerate(lines) if not line.startswith("#")) + 10
    cells = lines[row].rstrip("\n").split("\t")
    cells[column] = value
    lines[row] = "\t".join(cells) + "\n"
    path = tmp_path / "bad.tsv"
    path.write_text("".join(lines))
    with pytest.raises(InputError, match=f"^{path}:{row + 1}: {expected}"):
        read_windows_table(str(path))


def test_a_blacklist_in_another_naming_is_refused_not_ignored(inputs, tmp_path, capsys):
    """The real hg19 blacklist with '22' for 'chr22' would remove nothing, silently."""
    renamed = tmp_path / "blacklist.bed"
    renamed.write_text("".join(line.removeprefix("chr") for line in open(inputs["blacklist"])))
    out = tmp_path / "w.tsv"
    assert run(inputs, out, "--blacklist", str(renamed)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "names none of the genome's chromosomes (blacklist: 22; genome: chr20, chr22)" in err[0]
    assert not out.exists()


def test_a_peak_past_the_chromosome_end_still_labels_its_windows(inputs, tmp_path, capsys):
    """The real CTCF peaks plus one running 2 kb past the end of the example chr20 (5 Mb): its
    midpoint lay past the end, so it labelled nothing; cut to the chromosome, its summit is the
    middle of what is left (4,999,500). A record starting past the end is refused."""
    out = tmp_path / "w.tsv"

    def labels_at(summit):
        table = read_windows_table(str(out))
        around = (table.chroms == "chr20") & (table.starts <= summit) & (table.ends > summit)
        assert around.sum() == 2
        return table.labels[around, 0]

    assert main(["--genome", inputs["genome"], "--peaks", inputs["ctcf"], "--keep-negatives", "1", "-o", str(out)]) == 0
    assert not labels_at(4_999_500).any()
    peaks = tmp_path / "CTCF.bed"
    peaks.write_text(open(inputs["ctcf"]).read() + "chr20\t4999000\t5002000\n")
    assert main(["--genome", inputs["genome"], "--peaks", str(peaks), "--keep-negatives", "1", "-o", str(out)]) == 0
    assert labels_at(4_999_500).all()
    peaks.write_text(open(inputs["ctcf"]).read() + "chr20\t5000100\t5001000\n")
    assert main(["--genome", inputs["genome"], "--peaks", str(peaks), "-o", str(out)]) == 1
    assert "starts past the end of chr20 (5,000,000 bp in the genome)" in capsys.readouterr().err


def test_a_table_made_for_another_one_hot_order_is_refused(test_data, tmp_path):
    text = (test_data / "windows.tsv").read_text()
    assert "##one_hot_order=AGCT\n" in text
    path = tmp_path / "acgt.tsv"
    path.write_text(text.replace("##one_hot_order=AGCT\n", "##one_hot_order=ACGT\n"))
    with pytest.raises(InputError, match="made for one-hot order ACGT, this suite uses AGCT"):
        read_windows_table(str(path))
