"""Issue 29, classes 4, 5 and 10 (indexes and reads): an index beside a FASTA or BAM is checked
against the file's content, not trusted on its time stamp; CRAM input, a BAM file name that is
not a sample name, a mapped read without CIGAR, and --paired on single-end reads.

An index that does not fit its file is passed over (the file indexed privately, a warning naming
the index) when found beside it, and refused naming it when given with --bam-index: the results
equal those of a run with the right index.
"""

import gzip
import json
import os
import shutil
import tempfile

import numpy as np
import pyBigWig
import pysam
import pytest
from test_reliability import check_failure

from deepgmap_core import peak_calling
from deepgmap_core.alignments import IndexedBam
from deepgmap_core.cli import bam_to_peaks, make_training_windows, predict_bigwig
from deepgmap_core.errors import InputError
from deepgmap_core.genome import Genome
from deepgmap_core.indexes import bam_index_problem, fasta_index_problem

BAM = "K562_H3K4me3.chr22_20M.bam"
QC_NUMBERS = ("sample", "reads_total", "reads_in_peaks", "frip", "covered_bases", "covered_fraction", "cfrip", "peaks")


# FASTA indexes ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def genomes(test_data, tmp_path_factory):
    """The example genome as bgzip (test-data's) and as plain FASTA, and their right indexes' text."""
    folder = tmp_path_factory.mktemp("genomes")
    plain = folder / "genome.fa"
    with gzip.open(test_data / "genome.fa.gz", "rb") as source, open(plain, "wb") as target:
        shutil.copyfileobj(source, target)
    pysam.faidx(str(plain))
    right = {"plain": (plain.with_suffix(".fa.fai").read_bytes(), None),
             "bgzip": ((test_data / "genome.fa.gz.fai").read_bytes(), (test_data / "genome.fa.gz.gzi").read_bytes())}
    os.unlink(plain.with_suffix(".fa.fai"))
    return {"plain": plain, "bgzip": test_data / "genome.fa.gz"}, right


def wrong_index(kind, fault, right, test_data):
    """(.fai bytes, .gzi bytes or None) that do not fit the genome of `kind`."""
    fai, gzi = right[kind]
    if fault == "other_genome":   # the yeast genome's (bgzip too, so its .gzi as well)
        fai = (test_data / "yeast.fa.gz.fai").read_bytes()
        gzi = (test_data / "yeast.fa.gz.gzi").read_bytes() if gzi else None
    elif fault == "line_length":  # chr22's lines said to be 50 bases long, not 60
        lines = fai.splitlines(keepends=True)
        fai = b"".join(lines[:-1] + [lines[-1].replace(b"\t60\t61", b"\t50\t51")])
    elif fault == "truncated":    # the last line lost
        fai = fai[:fai.index(b"\n") + 1]
    elif fault == "cut_mid_line":
        fai = fai[:len(fai) - 9]
    elif fault == "other_gzi":    # the masked genome's: the same sequences and .fai, other blocks
        gzi = (test_data / "genome_masked.fa.gz.gzi").read_bytes()
    assert (fai, gzi) != right[kind]
    return fai, gzi


def genome_with_index(tmp_path, genomes, kind, index):
    """A link to the genome of `kind` with `index` (.fai, .gzi) beside it, newer than the FASTA."""
    folder = tmp_path / "genome"
    folder.mkdir()
    path = folder / genomes[kind].name
    path.symlink_to(genomes[kind])
    for suffix, content in zip((".fai", ".gzi"), index):
        if content is not None:
            index_path = folder / (path.name + suffix)
            index_path.write_bytes(content)
            os.utime(index_path, (os.path.getmtime(path) + 60,) * 2)
    return path


FASTA_FAULTS = [("plain", "other_genome"), ("plain", "line_length"), ("plain", "truncated"),
                ("plain", "cut_mid_line"), ("bgzip", "other_genome"), ("bgzip", "line_length"),
                ("bgzip", "truncated"), ("bgzip", "other_gzi")]


def test_right_fasta_indexes_fit_their_genomes(genomes, shared_data, test_data):
    """No false alarm: the indexes samtools made for the real genomes (hg19 pieces, sacCer3 with 17
    sequences of 50-base lines, the yeast and masked examples) and for a plain copy."""
    for fasta in [shared_data / "hg19" / "chr20.fa.gz", shared_data / "hg19" / "chr22.fa.gz",
                  shared_data / "sacCer3" / "sacCer3.fa.gz", test_data / "yeast.fa.gz",
                  test_data / "genome_masked.fa.gz", test_data / "genome.fa.gz"]:
        assert fasta_index_problem(str(fasta), f"{fasta}.fai", f"{fasta}.gzi") is None, fasta
    paths, right = genomes
    fai = paths["plain"].parent / "right.fai"
    fai.write_bytes(right["plain"][0])
    assert fasta_index_problem(str(paths["plain"]), str(fai)) is None


@pytest.mark.parametrize("kind, fault", FASTA_FAULTS)
def test_a_fasta_index_that_does_not_fit_is_passed_over(kind, fault, genomes, test_data, tmp_path, capsys):
    """The Genome reads the same bases through it as through the right index, warns naming the
    index, and writes nothing beside the FASTA."""
    paths, right = genomes
    path = genome_with_index(tmp_path, paths, kind, wrong_index(kind, fault, right, test_data))
    before = sorted(os.listdir(path.parent))
    with Genome(str(path)) as genome, Genome(str(test_data / "genome.fa.gz")) as reference:
        assert genome.lengths == reference.lengths
        for chrom, length in reference.lengths.items():
            for start in (0, length // 3, length - 1000):
                assert genome.fetch(chrom, start, start + 1000) == reference.fetch(chrom, start, start + 1000)
    warning = capsys.readouterr().err.strip().splitlines()
    assert len(warning) == 1 and f"{path}.fai" in warning[0] and "privately" in warning[0], warning
    assert sorted(os.listdir(path.parent)) == before


def windows_table(path):
    return [line for line in open(path) if not line.startswith("##")]


def windows_argv(genome, test_data, out):
    return ["--genome", str(genome), "--peaks", str(test_data / "CTCF.bed"), str(test_data / "H3K4me3.narrowPeak"),
            "--blacklist", str(test_data / "blacklist.bed"), "--valid-chroms", "chr22", "-o", str(out)]


def bigwig_values(folder):
    values = {}
    for name in sorted(os.listdir(folder)):
        with pyBigWig.open(str(folder / name)) as track:
            values[name] = {chrom: np.array(track.intervals(chrom)) for chrom in track.chroms()}
    return values


def tracks_argv(genome, test_data, out):
    return ["--model", str(test_data / "model.keras"), "--genome", str(genome), "--regions",
            str(test_data / "regions.bed"), "--outdir", str(out)]


GENOME_RUNS = {"make_training_windows": (make_training_windows, windows_argv, windows_table),
               "predict_bigwig": (predict_bigwig, tracks_argv, bigwig_values)}


def genome_run(command, genome, test_data, folder):
    """What `command` writes reading `genome`, as read back (table lines, bigWig intervals)."""
    module, argv, read = GENOME_RUNS[command]
    assert module.main(argv(genome, test_data, folder / "out")) == 0
    return read(folder / "out")


@pytest.fixture(scope="module")
def clean_result(test_data, tmp_path_factory):
    """A command's result with the example genome and its right index (one run per command)."""
    results = {}

    def result(command):
        if command not in results:
            results[command] = genome_run(command, test_data / "genome.fa.gz", test_data,
                                          tmp_path_factory.mktemp(command))
        return results[command]
    return result


@pytest.mark.parametrize("command, kind, fault", [("make_training_windows", *case) for case in FASTA_FAULTS]
                         + [("predict_bigwig", "plain", "other_genome"), ("predict_bigwig", "bgzip", "line_length")])
def test_a_command_given_a_wrong_fasta_index_writes_the_clean_result(command, kind, fault, genomes, clean_result,
                                                                      test_data, tmp_path):
    """make-training-windows: the same table; predict-bigwig: the same bigWig values."""
    paths, right = genomes
    path = genome_with_index(tmp_path, paths, kind, wrong_index(kind, fault, right, test_data))
    result, clean = genome_run(command, path, test_data, tmp_path), clean_result(command)
    if command == "make_training_windows":
        assert result == clean and len(result) > 100
    else:
        assert result.keys() == clean.keys() and result
        for name, chroms in result.items():
            assert chroms.keys() == clean[name].keys()
            for chrom, intervals in chroms.items():
                assert len(intervals) and np.allclose(intervals, clean[name][chrom], rtol=1e-5, atol=1e-6)


# BAM indexes ------------------------------------------------------------------------------------

def run_peaks(bam, out, *extra):
    out.mkdir(exist_ok=True)
    return bam_to_peaks.main(["--bam", str(bam), "--min-peaks", "1", "--peaks", str(out / "p.narrowPeak"),
                              "--qc-json", str(out / "qc.json"), *extra])


def peaks_and_qc(out):
    qc = json.load(open(out / "qc.json"))
    return open(out / "p.narrowPeak").read(), {key: qc[key] for key in QC_NUMBERS}


@pytest.fixture(scope="module")
def clean_peaks(test_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("peaks")
    assert run_peaks(test_data / BAM, out) == 0
    return peaks_and_qc(out)


def bam_with_index(tmp_path, test_data, index_bytes, name=BAM):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(test_data / BAM, folder / name)
    if index_bytes is not None:
        (folder / (name + ".bai")).write_bytes(index_bytes)
        os.utime(folder / (name + ".bai"), (os.path.getmtime(folder / name) + 60,) * 2)
    return folder / name


def other_bai(fault, shared_data, test_data):
    return {"other_bam": lambda: (shared_data / "hg19" / "K562_H3K4me3.chr22.bam.bai").read_bytes(),
            "other_genome": lambda: (test_data / "yeast_ATAC_NFR.bam.bai").read_bytes(),
            "truncated": lambda: (test_data / (BAM + ".bai")).read_bytes()[:5000]}[fault]()


@pytest.mark.parametrize("fault", ["other_bam", "other_genome", "truncated"])
def test_a_bam_index_beside_it_that_does_not_fit_gives_the_clean_peaks(fault, clean_peaks, shared_data, test_data,
                                                                       tmp_path, capsys):
    bam = bam_with_index(tmp_path, test_data, other_bai(fault, shared_data, test_data))
    before = sorted(os.listdir(bam.parent))
    assert run_peaks(bam, tmp_path / "out") == 0
    assert peaks_and_qc(tmp_path / "out") == clean_peaks
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and f"{bam}.bai" in warnings[0], warnings
    assert sorted(os.listdir(bam.parent)) == before


def test_a_given_bam_index_that_does_not_fit_is_refused_naming_it(shared_data, test_data, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    index = shared_data / "hg19" / "K562_H3K4me3.chr22.bam.bai"
    check_failure(bam_to_peaks, ["--bam", str(test_data / BAM), "--bam-index", str(index), "--peaks",
                                 str(out / "p.narrowPeak")], out, capsys, [str(index)])


def test_right_bam_indexes_fit_and_other_ones_do_not(shared_data, test_data, tmp_path):
    """.bai files samtools made (test data and the real hg19 and sacCer3 BAMs) and a .csi fit their
    BAM; a .csi of another BAM, an index of a BAM with other references, or garbage does not."""
    bams = [test_data / BAM, shared_data / "hg19" / "K562_H3K4me3.chr22.bam",
            shared_data / "sacCer3" / "ATAC.example.bam",
            *(test_data / f"yeast_ATAC_{name}.bam" for name in ("NFR", "nucleosome", "shallow"))]
    for bam in bams:
        with pysam.AlignmentFile(str(bam)) as reads:
            lengths = dict(zip(reads.references, reads.lengths))
        assert bam_index_problem(str(bam), f"{bam}.bai", lengths) is None, bam
    csi = tmp_path / "reads.csi"
    pysam.index("-c", str(bams[0]), str(csi))
    assert bam_index_problem(str(bams[0]), str(csi), {"chr22": 51_304_566}) is None
    pysam.index("-c", str(bams[1]), str(csi))
    assert bam_index_problem(str(bams[0]), str(csi), {"chr22": 51_304_566}) is not None
    assert "references" in bam_index_problem(str(bams[0]), f"{bams[2]}.bai", {"chr22": 51_304_566})
    for garbage in (b"hello\tworld\n", b"BAI\x01\x01\x00\x00\x00\xfb\xff\xff\xff", b"BAI\x01\xff\xff\xff\x7f"):
        (tmp_path / "garbage.bai").write_bytes(garbage)   # no magic; a count of -5 bins; 2**31 references
        assert "not a whole BAM index" in bam_index_problem(str(bams[0]), str(tmp_path / "garbage.bai"),
                                                            {"chr22": 51_304_566})


# CRAM, file names, reads -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cram(shared_data, test_data, tmp_path_factory):
    """The test BAM as CRAM against the real hg19 chr22 (its header's one reference)."""
    path = tmp_path_factory.mktemp("cram") / BAM.replace(".bam", ".cram")
    pysam.view("-C", "-T", str(shared_data / "hg19" / "chr22.fa.gz"), "-o", str(path), str(test_data / BAM),
               catch_stdout=False)
    assert path.read_bytes()[:4] == b"CRAM"
    return path


def test_cram_with_its_reference_gives_the_peaks_of_the_bam(cram, clean_peaks, shared_data, tmp_path):
    before = sorted(os.listdir(cram.parent))
    assert run_peaks(cram, tmp_path / "out", "--reference", str(shared_data / "hg19" / "chr22.fa.gz")) == 0
    assert peaks_and_qc(tmp_path / "out") == clean_peaks
    assert sorted(os.listdir(cram.parent)) == before


@pytest.mark.parametrize("reference", [None, "another_length", "other_bases"])
def test_cram_without_its_reference_is_one_line(reference, cram, test_data, tmp_path, capsys):
    """No --reference: the error says it is CRAM; another genome (chr22 of another length, or of
    its length with other bases): it names the reference. Nothing is written beside it."""
    out = tmp_path / "out"
    out.mkdir()
    argv = ["--bam", str(cram), "--peaks", str(out / "p.narrowPeak")]
    if reference == "another_length":
        argv += ["--reference", str(test_data / "genome.fa.gz")]
    elif reference == "other_bases":
        fasta = tmp_path / "other.fa"
        fasta.write_bytes(b">chr22\n" + (b"A" * 60 + b"\n") * (51_304_566 // 60) + b"A" * (51_304_566 % 60) + b"\n")
        argv += ["--reference", str(fasta)]
    check_failure(bam_to_peaks, argv, out, capsys, [argv[-1] if reference else "CRAM"])
    assert {path.name for path in tmp_path.iterdir()} <= {"out", "other.fa"}   # no other.fa.fai


def test_a_bam_named_with_a_space_names_its_peaks_from_a_derived_name(clean_peaks, test_data, tmp_path, capsys):
    bam = bam_with_index(tmp_path, test_data, (test_data / (BAM + ".bai")).read_bytes(), name="my sample.bam")
    assert run_peaks(bam, tmp_path / "out") == 0
    peaks, qc = peaks_and_qc(tmp_path / "out")
    rows = [line.split("\t") for line in peaks.splitlines()]
    assert rows and all(row[3].startswith("my_sample_peak_") for row in rows) and qc["sample"] == "my_sample"
    clean_rows = [line.split("\t") for line in clean_peaks[0].splitlines()]
    assert [row[:3] + row[4:] for row in rows] == [row[:3] + row[4:] for row in clean_rows]
    out = tmp_path / "named"
    out.mkdir()
    check_failure(bam_to_peaks, ["--bam", str(bam), "--name", "my sample", "--peaks", str(out / "p.narrowPeak")],
                  out, capsys, ["--name"])


@pytest.mark.parametrize("file_name, name", [("my sample.bam", "my_sample"), ("/run 2/K562 (rep1).bam", "K562_rep1"),
                                             ("sample#3.sorted.bam", "sample_3"), ("été.bam", "t"),
                                             ("ü.bam", "sample"), ("ok-1_a+b.bam", "ok-1_a+b")])
def test_a_sample_name_is_derived_from_any_file_name(file_name, name):
    assert bam_to_peaks.sample_name(file_name) == name


def test_a_mapped_read_without_cigar_counts_as_one_base(test_data, tmp_path):
    """As htslib's bam_endpos: no traceback, the read counted, QC equal to an independent count."""
    bam = tmp_path / "reads.bam"
    with pysam.AlignmentFile(str(test_data / BAM)) as source, pysam.AlignmentFile(str(bam), "wb",
                                                                                  template=source) as target:
        for number, read in enumerate(source.fetch(until_eof=True)):
            if number == 500:
                assert not read.is_unmapped
                read.cigartuples = None
            target.write(read)
    pysam.index(str(bam))
    assert run_peaks(bam, tmp_path / "out") == 0
    qc = json.load(open(tmp_path / "out" / "qc.json"))
    with pysam.AlignmentFile(str(bam)) as reads:
        counted = [read for read in reads.fetch(until_eof=True)
                   if not (read.is_unmapped or read.is_secondary or read.is_supplementary or read.is_qcfail)]
    assert sum(read.cigartuples is None for read in counted) == 1
    assert qc["reads_total"] == len(counted)
    covered = np.zeros(51_304_566, dtype=bool)
    for read in counted:
        covered[read.reference_start:read.reference_end or read.reference_start + 1] = True
    assert qc["covered_bases"] == covered.sum()


def test_paired_on_single_end_reads_is_one_line_before_macs3(test_data, tmp_path, capsys, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setattr(peak_calling, "find_macs3", lambda: pytest.fail("MACS3 was started"))
    out = tmp_path / "out"
    out.mkdir()
    check_failure(bam_to_peaks, ["--bam", str(test_data / BAM), "--paired", "--peaks", str(out / "p.narrowPeak"),
                                 "--qc", str(out / "qc.tsv")], out, capsys, ["no paired reads"])
    assert os.listdir(scratch) == []   # MACS3's folder never made, the private files gone


def test_paired_end_reads_pass_the_paired_check(test_data):
    with IndexedBam(str(test_data / "yeast_ATAC_NFR.bam")) as reads:
        reads.check_paired()
    with IndexedBam(str(test_data / BAM)) as reads, pytest.raises(InputError, match="no paired reads"):
        reads.check_paired()
