"""Genome-wide prediction split by chromosome and merged back (deepgmap-merge-bigwigs) gives
the bigWigs of the single job, byte for byte, whether the jobs got --chroms or per-chromosome
FASTA files (as Galaxy maps them); bad merges stop with one line."""

import os

import pyBigWig
import pytest

from deepgmap_core.cli.merge_bigwigs import main as merge
from deepgmap_core.cli.predict_bigwig import main as predict
from deepgmap_core.genome import Genome

CLASSES = ("CTCF", "H3K4me3")
CHROMS = ("chr20", "chr22")


@pytest.fixture(scope="module")
def single_job(test_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("single")
    assert predict(["--model", str(test_data / "model.keras"), "--genome", str(test_data / "genome.fa.gz"),
                    "--outdir", str(folder)]) == 0
    return folder


def per_chromosome_jobs(test_data, folder, genome_of):
    """Predict each chromosome in its own job; genome_of(chrom) -> the job's genome and arguments."""
    for chrom in CHROMS:
        genome, extra = genome_of(chrom)
        assert predict(["--model", str(test_data / "model.keras"), "--genome", genome,
                        "--outdir", str(folder / chrom), *extra]) == 0


def contents(path):
    with pyBigWig.open(str(path)) as bw:
        return bw.chroms(), {chrom: bw.intervals(chrom) for chrom in bw.chroms()}


def assert_merges_into_single_job(folder, single_job, order):
    for name in CLASSES:
        merged = folder / f"{name}.bw"
        assert merge(["-o", str(merged), *(str(folder / chrom / f"{name}.bw") for chrom in order)]) == 0
        chroms, intervals = contents(merged)
        expected_chroms, expected_intervals = contents(single_job / f"{name}.bw")
        assert list(chroms.items()) == list(expected_chroms.items())
        assert all(len(intervals[chrom]) > 100 for chrom in CHROMS)
        assert intervals == expected_intervals
        assert merged.read_bytes() == (single_job / f"{name}.bw").read_bytes()


def test_chromosome_jobs_merge_into_the_single_job_bigwigs(test_data, single_job, tmp_path):
    genome = str(test_data / "genome.fa.gz")
    per_chromosome_jobs(test_data, tmp_path, lambda chrom: (genome, ["--chroms", chrom]))
    # Each part carries the whole genome's chromosome sizes: any input order gives the genome's order.
    assert_merges_into_single_job(tmp_path, single_job, CHROMS[::-1])


def test_per_chromosome_fasta_jobs_merge_into_the_single_job_bigwigs(test_data, single_job, tmp_path):
    with Genome(str(test_data / "genome.fa.gz")) as genome:
        for chrom in CHROMS:
            sequence = genome.fetch(chrom, 0, genome.lengths[chrom])
            (tmp_path / f"{chrom}.fa").write_bytes(b">" + chrom.encode() + b"\n" + sequence + b"\n")
    per_chromosome_jobs(test_data, tmp_path, lambda chrom: (str(tmp_path / f"{chrom}.fa"), []))
    assert contents(tmp_path / "chr22" / "CTCF.bw")[0] == {"chr22": 21_000_000}
    # Each part knows only its chromosome: the merged header lists them in the inputs' order.
    assert_merges_into_single_job(tmp_path, single_job, CHROMS)


def one_line_error(capsys):
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deepgmap-merge-bigwigs: error: ")
    return lines[0]


def test_overlapping_parts_are_refused(test_data, single_job, tmp_path, capsys):
    assert predict(["--model", str(test_data / "model.keras"), "--genome", str(test_data / "genome.fa.gz"),
                    "--chroms", "chr22", "--outdir", str(tmp_path / "chr22")]) == 0
    capsys.readouterr()
    whole, part = str(single_job / "CTCF.bw"), str(tmp_path / "chr22" / "CTCF.bw")
    assert merge(["-o", str(tmp_path / "merged.bw"), whole, part]) == 1
    line = one_line_error(capsys)
    assert f"{whole} and {part}: intervals overlap on chr22" in line
    assert not (tmp_path / "merged.bw").exists()
    assert [name for name in os.listdir(tmp_path) if name.endswith(".part")] == []


def write_bigwig(path, chrom_sizes, chrom, start, value):
    with pyBigWig.open(str(path), "w") as bw:
        bw.addHeader(list(chrom_sizes.items()))
        bw.addEntries([chrom], [start], ends=[start + 300], values=[value])


def test_other_chromosome_sizes_are_refused(tmp_path, capsys):
    write_bigwig(tmp_path / "hg19.bw", {"chr20": 63_025_520}, "chr20", 0, 0.5)
    write_bigwig(tmp_path / "hg38.bw", {"chr20": 64_444_167}, "chr20", 300, 0.5)
    assert merge(["-o", str(tmp_path / "merged.bw"), str(tmp_path / "hg19.bw"), str(tmp_path / "hg38.bw")]) == 1
    assert "chr20 is 64,444,167 bp, but 63,025,520 bp in" in one_line_error(capsys)
    assert not (tmp_path / "merged.bw").exists()


def test_parts_on_separate_chromosomes_and_regions_merge(tmp_path):
    write_bigwig(tmp_path / "a.bw", {"chr2": 5000}, "chr2", 600, 0.25)
    write_bigwig(tmp_path / "b.bw", {"chr1": 4000, "chr2": 5000}, "chr2", 0, 0.75)
    write_bigwig(tmp_path / "c.bw", {"chr1": 4000}, "chr1", 900, 1.0)
    paths = [str(tmp_path / name) for name in ("a.bw", "b.bw", "c.bw")]
    assert merge(["-o", str(tmp_path / "merged.bw"), *paths]) == 0
    chroms, intervals = contents(tmp_path / "merged.bw")
    assert list(chroms.items()) == [("chr2", 5000), ("chr1", 4000)]
    assert intervals == {"chr2": ((0, 300, 0.75), (600, 900, 0.25)), "chr1": ((900, 1200, 1.0),)}


def test_a_file_that_is_no_bigwig_is_refused(test_data, tmp_path, capsys):
    assert merge(["-o", str(tmp_path / "merged.bw"), str(test_data / "regions.bed")]) == 1
    assert one_line_error(capsys).endswith("regions.bed: not a bigWig file")
    assert merge(["-o", str(tmp_path / "missing" / "merged.bw"), str(test_data / "regions.bed")]) == 1
    assert "output folder" in one_line_error(capsys)


@pytest.mark.parametrize("kept", [0.05, 0.3, 0.6, 0.9, 0.99])
def test_a_truncated_bigwig_is_refused(single_job, tmp_path, capsys, kept):
    """The chr20 + chr22 CTCF track of the example model cut short (an interrupted copy): libBigWig
    read the first intervals of such a file and silently missed the rest."""
    whole = (single_job / "CTCF.bw").read_bytes()
    cut = tmp_path / "cut.bw"
    cut.write_bytes(whole[:int(len(whole) * kept)])
    assert merge(["-o", str(tmp_path / "merged.bw"), str(cut)]) == 1
    assert one_line_error(capsys).endswith("cut.bw: truncated bigWig (its header points past the end of the file)")
    assert os.listdir(tmp_path) == ["cut.bw"]
