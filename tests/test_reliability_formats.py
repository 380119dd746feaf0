"""Format variants real files have (issue 29, classes 5, 9 and 10): BED12 beside narrowPeak, a
UTF-8 byte-order mark, compressions the suite does not read, UTF-16 text, a protein FASTA, an
attributions file with NaN or without a dataset, a windows table whose header cannot be right.

A variant the suite reads gives the result of the same data in the plain form (a clean run's
outputs, less the lines naming the inputs); one it does not read is one line naming the file and
what to do, with nothing written (check_failure)."""

import bz2
import gzip
import lzma
import shutil

import h5py
import numpy as np
import pytest
from test_reliability import COMMANDS, INPUTS, check_failure, prepare, snapshot

from deepgmap_core.cli import discover_motifs, make_training_windows, train_model
from deepgmap_core.peaks import read_peaks
from deepgmap_core.windows import read_windows_table

BOM = b"\xef\xbb\xbf"
# Provenance lines that name the input files (their paths differ between a variant and the clean run).
NAMING_INPUTS = ("##command=", "##deepgmap_command=", "##genome=", "##classes=", "##blacklist=", "##source=")


def outputs_without_input_names(folder):
    """Every file under `folder`: text files less their lines naming inputs, others as bytes."""
    files = {}
    for name, data in snapshot(folder).items():
        if data is not None and name.endswith((".tsv", ".vcf", ".meme", ".bed")):
            data = b"\n".join(line for line in data.split(b"\n") if not line.decode().startswith(NAMING_INPUTS))
        files[name] = data
    return files


def run_clean_and_variant(command, tmp_path, test_data, capsys, variants):
    """(outputs of a clean run, outputs of a run with the inputs in `variants` replaced); both exit 0."""
    module = COMMANDS[command][0]
    results = []
    for name, replaced in (("clean", {}), ("variant", variants)):
        out = tmp_path / name
        out.mkdir()
        argv = prepare(tmp_path, test_data, command, out, {key: str(path) for key, path in replaced.items()})
        for relative in COMMANDS[command][2]:  # no earlier outputs: both runs start alike
            (out / relative).unlink()
        code = module.main(argv)
        assert code == 0, capsys.readouterr().err[-2000:]
        results.append(outputs_without_input_names(out))
    assert results[0] and results[0] == results[1]


def with_bom(source, target, compress=False):
    data = BOM + source.read_bytes() if not source.name.endswith(".gz") else BOM + gzip.decompress(
        source.read_bytes())
    target.write_bytes(gzip.compress(data) if compress else data)
    return target


def bed12_line(fields):
    """A BED12 record of a BED3 interval: thick part the whole interval, two blocks covering it."""
    chrom, start, end = fields[0], int(fields[1]), int(fields[2])
    half = (end - start) // 2
    return "\t".join([chrom, str(start), str(end), "peak", "0", "+", str(start), str(end), "255,0,0", "2",
                      f"{half},{end - start - half},", f"0,{half},"])


# --- BED12 ----------------------------------------------------------------------------------------------------

def test_bed12_peaks_make_the_table_of_the_same_peaks_as_bed3(test_data, tmp_path, capsys):
    lines = (test_data / "CTCF.bed").read_text().splitlines()
    bed12 = tmp_path / "CTCF.bed"
    bed12.write_text("".join(bed12_line(line.split("\t")) + "\n" for line in lines))
    run_clean_and_variant("make_training_windows", tmp_path, test_data, capsys, {"peaks": bed12})


@pytest.mark.parametrize("as_text", [False, True], ids=["bytes", "text"])
def test_bed12_records_are_their_intervals_in_both_readers(shared_data, tmp_path, as_text):
    """The real GM12878 CTCF peaks as BED12 (block count 2, which read as a summit offset put every
    summit 2 bp after the start): the byte parser and the line reader give the BED3 midpoints."""
    lines = [line.split("\t") for line in (shared_data / "hg19" / "GM12878_CTCF.top500.bed").read_text().splitlines()
             if line.strip() and not line.startswith(("#", "track"))]
    bed3, bed12 = tmp_path / "p.bed", tmp_path / "p12.bed"
    bed3.write_text("".join("\t".join(fields[:3]) + "\n" for fields in lines))
    comment = "# peaks, café\n" if as_text else ""  # a non-ASCII byte: the file is read as text
    bed12.write_text(comment + "".join(bed12_line(fields) + "\n" for fields in lines))
    expected, found = read_peaks(str(bed3)), read_peaks(str(bed12))
    assert list(found.by_chrom) == list(expected.by_chrom) and found.count == len(lines) > 100
    for chrom, intervals in expected.by_chrom.items():
        np.testing.assert_array_equal(found.by_chrom[chrom].summits, intervals.summits)
        np.testing.assert_array_equal(found.by_chrom[chrom].ends, intervals.ends)


@pytest.mark.parametrize("record, summit", [
    ("chr1\t100\t300\tp\t0\t+\t100\t300\t0\t1\t200\t0", 200),  # BED12, one block, no trailing commas
    ("chr1\t100\t300\tp\t0\t+\t150\t250\t0\t2\t50,50\t0,150\t1\t2.5\t3", 200),  # gappedPeak (BED12+3)
    ("chr1\t100\t300\tp\t0\t.\t33.08\t24.3\t2.4\t15\textra\t1", 115),  # narrowPeak with 2 more columns
    ("chr1\t100\t300\tp\t0\t.\t5.1\t12.3\t2.2", 200),  # broadPeak
], ids=["bed12-one-block", "gappedPeak", "narrowPeak-plus", "broadPeak"])
@pytest.mark.parametrize("as_text", [False, True], ids=["bytes", "text"])
def test_the_summit_column_is_read_only_from_narrowpeak_like_files(record, summit, as_text, tmp_path):
    path = tmp_path / "p.bed"
    path.write_text(("# café\n" if as_text else "") + record + "\n" + record.replace("chr1", "chr2") + "\n")
    peaks = read_peaks(str(path))
    assert [intervals.summits.tolist() for intervals in peaks.by_chrom.values()] == [[summit], [summit]]


# --- byte-order marks ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("input_name, compress", [("peaks", False), ("peaks", True), ("blacklist", False),
                                                  ("genome", False), ("genome", True)])
def test_a_byte_order_mark_changes_no_table(input_name, compress, test_data, tmp_path, capsys):
    source = {"peaks": "CTCF.bed", "blacklist": "blacklist.bed", "genome": "genome.fa.gz"}[input_name]
    target = tmp_path / (source.removesuffix(".gz") + (".gz" if compress else ""))
    run_clean_and_variant("make_training_windows", tmp_path, test_data, capsys,
                          {input_name: with_bom(test_data / source, target, compress)})


@pytest.mark.parametrize("compress", [False, True])
def test_a_windows_table_with_a_byte_order_mark_reads_the_same(compress, test_data, tmp_path):
    clean = read_windows_table(str(test_data / "windows.tsv"))
    table = read_windows_table(str(with_bom(test_data / "windows.tsv", tmp_path / "w.tsv", compress)))
    assert table.metadata == clean.metadata and table.class_names == clean.class_names
    for column in ("chroms", "starts", "ends", "splits", "labels"):
        np.testing.assert_array_equal(getattr(table, column), getattr(clean, column))


@pytest.mark.parametrize("compress", [False, True])
def test_a_vcf_with_a_byte_order_mark_scores_the_same(compress, test_data, tmp_path, capsys):
    vcf = with_bom(test_data / "variants.vcf", tmp_path / "v.vcf", compress)
    run_clean_and_variant("score_variants", tmp_path, test_data, capsys, {"vcf": vcf})


def test_a_motif_database_with_a_byte_order_mark_matches_the_same(test_data, tmp_path, capsys):
    meme = with_bom(test_data / "JASPAR2024_CORE_clusters.meme", tmp_path / "db.meme")
    run_clean_and_variant("motif_extract", tmp_path, test_data, capsys, {"motifs": meme})


def test_regions_with_a_byte_order_mark_predict_the_same(test_data, tmp_path, capsys):
    regions = with_bom(test_data / "regions.bed", tmp_path / "regions.bed")
    windows = with_bom(test_data / "windows.tsv", tmp_path / "windows.tsv")
    run_clean_and_variant("predict_bigwig", tmp_path, test_data, capsys, {"regions": regions, "windows": windows})


def test_attribute_regions_with_a_byte_order_mark_give_the_same_contributions(test_data, tmp_path, capsys):
    from deepgmap_core.cli import attribute

    results = []
    for name, regions in (("clean", test_data / "regions.bed"),
                          ("variant", with_bom(test_data / "regions.bed", tmp_path / "regions.bed"))):
        out = tmp_path / name
        out.mkdir()
        argv = ["--model", str(test_data / "CTCF_chr20.keras"), "--genome", str(test_data / "genome.fa.gz"),
                "--regions", str(regions), "--chroms", "all", "-o", str(out / "a.h5")]
        assert attribute.main(argv) == 0, capsys.readouterr().err[-2000:]
        with h5py.File(out / "a.h5") as store:
            results.append({name: store[name][()] for name in ("input_seqs", "hyp_scores", "windows/start")})
    for name, values in results[0].items():
        np.testing.assert_array_equal(results[1][name], values)


# --- files the suite does not read: one line saying what they are ------------------------------------------------

def compressed_copy(kind, source, tmp_path):
    data = source.read_bytes()
    if source.name.endswith(".gz"):
        data = gzip.decompress(data)
    name = source.name.removesuffix(".gz")
    if kind == "bzip2":
        path, data = tmp_path / f"{name}.bz2", bz2.compress(data)
    elif kind == "xz":
        path, data = tmp_path / f"{name}.xz", lzma.compress(data)
    elif kind == "zstd":  # no zstd module before Python 3.14: its magic number and a frame header
        path, data = tmp_path / f"{name}.zst", b"\x28\xb5\x2f\xfd\x04\x58" + data[:100]
    elif kind == "UTF-16":
        path, data = tmp_path / name, data.decode().encode("utf-16")
    else:  # a zip archive holding the file
        import zipfile

        path = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(name, data)
        return path
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("command, input_name, kind", [
    ("make_training_windows", "peaks", "bzip2"), ("make_training_windows", "peaks", "xz"),
    ("make_training_windows", "peaks", "UTF-16"), ("make_training_windows", "blacklist", "zstd"),
    ("make_training_windows", "genome", "bzip2"), ("make_training_windows", "genome", "UTF-16"),
    ("train_model", "windows", "bzip2"), ("train_model", "windows", "zip"),
    ("score_variants", "vcf", "bzip2"), ("score_variants", "vcf", "UTF-16"),
    ("predict_bigwig", "regions", "xz"), ("motif_extract", "motifs", "bzip2"),
])
def test_another_compression_or_utf16_is_one_line_naming_it(command, input_name, kind, test_data, tmp_path, capsys):
    path = compressed_copy(kind, test_data / INPUTS[input_name], tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    argv = prepare(tmp_path, test_data, command, out, {input_name: str(path)})
    check_failure(COMMANDS[command][0], argv, out, capsys, [f"{path.name}: "])


@pytest.mark.parametrize("kind, named", [
    ("bzip2", "is bzip2-compressed: decompress it (bunzip2) or compress it with gzip"),
    ("xz", "is xz-compressed"), ("zstd", "is zstd-compressed"), ("zip", "is a zip archive"),
    ("UTF-16", "convert it to UTF-8")])
def test_the_line_names_the_compression_and_what_to_do(kind, named, test_data, tmp_path, capsys):
    path = compressed_copy(kind, test_data / "CTCF.bed", tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    argv = prepare(tmp_path, test_data, "make_training_windows", out, {"peaks": str(path)})
    assert make_training_windows.main(argv) == 1
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and f"{path}: peak file is " in error and named in error, error


def test_a_protein_fasta_as_genome_is_one_line(test_data, tmp_path, capsys):
    protein = ("MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQTLGQHDFSAGEGL"
               "YTHMKALRPDEDRL")
    genome = tmp_path / "proteins.fa"
    genome.write_text("".join(f">sp|P{n:05d}|PROT{n}\n" + "\n".join(protein[i:i + 60] for i in range(0, 120, 60))
                              + "\n" for n in range(50)))
    out = tmp_path / "out"
    out.mkdir()
    argv = prepare(tmp_path, test_data, "make_training_windows", out, {"genome": str(genome)})
    check_failure(make_training_windows, argv, out, capsys, ["proteins.fa: not a nucleotide FASTA"])


# --- attributions files ---------------------------------------------------------------------------------------

def edited_attributions(test_data, tmp_path, edit):
    path = tmp_path / "edited.h5"
    shutil.copy(test_data / "CTCF_chr22_attributions.h5", path)
    with h5py.File(path, "r+") as store:
        edit(store)
    return path


def _put(name, value):
    def edit(store):
        data = store[name][()]
        data.flat[7] = value
        store[name][...] = data
    return edit


def _delete(name):
    def edit(store):
        del store[name]
    return edit


def _reshape(name):
    def edit(store):
        data = store[name][()]
        del store[name]
        store[name] = data[:-1]
    return edit


def _replace(name, values):
    def edit(store):
        n = store["input_seqs"].shape[0]
        del store[name]
        store[name] = values(n)
    return edit


def _delete_attribute(name):
    def edit(store):
        del store.attrs[name]
    return edit


@pytest.mark.parametrize("edit, expected", [
    (_put("hypothetical_contributions/CTCF", np.nan),
     "dataset hypothetical_contributions/CTCF holds 1 value(s) that are NaN"),
    (_put("hypothetical_contributions/CTCF", np.inf), "dataset hypothetical_contributions/CTCF holds 1 value(s) that"),
    (_put("input_seqs", np.nan), "dataset input_seqs holds 1 value(s) that are NaN"),
    (_delete("windows/start"), "no dataset windows/start"),
    (_delete("windows/chrom"), "no dataset windows/chrom"),
    (_delete("input_seqs"), "no dataset input_seqs"),
    (_delete("hypothetical_contributions/CTCF"), "no dataset hypothetical_contributions/CTCF"),
    (_reshape("windows/start"), "dataset windows/start has shape"),
    (_put("windows/start", -5), "dataset windows/start holds 1 value(s) that are negative"),
    (_replace("windows/start", lambda n: np.arange(n) * 1.5), "dataset windows/start holds float64, not whole"),
    (_replace("windows/chrom", np.arange), "dataset windows/chrom holds int64, not text"),
    (_replace("input_seqs", lambda n: np.zeros((n, 1000, 5))), "dataset input_seqs has shape"),
    (_delete_attribute("class_names"), "no class_names attribute"),
], ids=["nan", "inf", "nan-one-hot", "no-start", "no-chrom", "no-seqs", "no-class", "short-starts",
        "negative-start", "float-starts", "number-chroms", "five-channels", "no-class-names"])
def test_an_attributions_file_with_a_bad_dataset_is_one_line_naming_it(edit, expected, test_data, tmp_path, capsys):
    path = edited_attributions(test_data, tmp_path, edit)
    out = tmp_path / "out"
    out.mkdir()
    argv = prepare(tmp_path, test_data, "discover_motifs", out, {"attributions": str(path)})
    check_failure(discover_motifs, argv, out, capsys, [f"edited.h5: {expected}"])


# --- windows table headers --------------------------------------------------------------------------------------

def edited_table(test_data, tmp_path, edit):
    path = tmp_path / "edited.tsv"
    path.write_text(edit((test_data / "windows.tsv").read_text()))
    return path


@pytest.mark.parametrize("command", ["train_model", "predict_bigwig"])
@pytest.mark.parametrize("edit, key", [
    (lambda text: text.replace("##stride=300", "##stride=0"), "##stride=0"),
    (lambda text: text.replace("##stride=300", "##stride=3OO"), "##stride=3OO"),
    (lambda text: text.replace("##window=1000", "##window=-1000"), "##window=-1000"),
    (lambda text: text.replace("##stride=300", "##stride=300\n##flank=abc"), "##flank=abc"),
    (lambda text: text.replace("##stride=300", "##stride=300\n##flank=-400"), "##flank=-400"),
    (lambda text: text.replace("##keep_negatives=0.1", "##keep_negatives=nan"), "##keep_negatives=nan"),
    (lambda text: text.replace("##stride=300", "##stride=300\n##flank=100"), "##flank=100 make 1200"),
    (lambda text: "\n".join(line if line.startswith("##") else "\t".join(line.split("\t")[:4])
                            for line in text.splitlines()) + "\n", "no class columns"),
], ids=["stride-0", "stride-letters", "window-negative", "flank-abc", "flank-negative", "keep-nan", "flank-width",
        "no-classes"])
def test_a_windows_table_header_that_cannot_be_right_is_one_line_before_any_work(command, edit, key, test_data,
                                                                              tmp_path, capsys):
    path = edited_table(test_data, tmp_path, edit)
    out = tmp_path / "out"
    out.mkdir()
    argv = prepare(tmp_path, test_data, command, out, {"windows": str(path)})
    check_failure(COMMANDS[command][0], argv, out, capsys, [f"edited.tsv: {key}" if key[0] == "n" else key])


def test_train_model_reads_the_header_before_it_trains(test_data, tmp_path, capsys):
    """No progress of training before the header's error: it is found when the table is read."""
    path = edited_table(test_data, tmp_path, lambda text: text.replace("##stride=300", "##stride=0"))
    out = tmp_path / "out"
    out.mkdir()
    argv = prepare(tmp_path, test_data, "train_model", out, {"windows": str(path)})
    assert train_model.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"deepgmap-train-model: error: {path}: header line ##stride=0: "
                   f"the stride must be >= 1"]
