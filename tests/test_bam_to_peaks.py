"""deepgmap-bam-to-peaks on real reads: MACS3 peaks, QC numbers against independent counts,
output formats, and bad input."""

import bisect
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pysam
import pytest

from deepgmap_core.cli.bam_to_peaks import EXIT_QC_FAILED, main
from deepgmap_core.peaks import read_peaks


@pytest.fixture(scope="module")
def k562(shared_data, tmp_path_factory):
    """One run on the ENCODE K562 H3K4me3 reads (chr22) with every output."""
    out = tmp_path_factory.mktemp("k562")
    hg19 = shared_data / "hg19"
    paths = {key: str(out / name) for key, name in (("peaks", "p.narrowPeak"), ("summits", "s.bed"),
                                                   ("qc", "qc.tsv"), ("qc_json", "qc.json"), ("qc_plot", "qc.png"),
                                                   ("qc_multiqc", "K562_mqc.json"))}
    code = main(["--bam", str(hg19 / "K562_H3K4me3.chr22.bam"), "--blacklist", str(hg19 / "hg19-blacklist.v2.bed"),
                 "--threads", "1", "--peaks", paths["peaks"], "--summits", paths["summits"], "--qc", paths["qc"],
                 "--qc-json", paths["qc_json"], "--qc-plot", paths["qc_plot"], "--qc-multiqc", paths["qc_multiqc"]])
    return code, paths, hg19


def independent_counts(bam_path, peaks_path):
    """Reads, reads overlapping a peak and covered bases, the slow and obvious way."""
    intervals = sorted((int(f[1]), int(f[2])) for f in (line.split("\t") for line in open(peaks_path)))
    merged = []
    for start, end in intervals:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    ends = [end for _, end in merged]
    with pysam.AlignmentFile(bam_path) as bam:
        covered = np.zeros(bam.lengths[0], dtype=bool)
        total = in_peaks = 0
        for read in bam.fetch(until_eof=True):
            if read.is_unmapped or read.is_secondary or read.is_supplementary or read.is_qcfail:
                continue
            total += 1
            covered[read.reference_start:read.reference_end] = True
            i = bisect.bisect_right(ends, read.reference_start)
            in_peaks += i < len(merged) and merged[i][0] < read.reference_end
    return total, in_peaks, int(covered.sum()), len(covered)


def test_qc_numbers_equal_independent_counts(k562):
    code, paths, hg19 = k562
    assert code == 0
    qc = json.load(open(paths["qc_json"]))
    total, in_peaks, covered, length = independent_counts(str(hg19 / "K562_H3K4me3.chr22.bam"), paths["peaks"])
    assert qc["reads_total"] == total == 205_035
    assert qc["reads_in_peaks"] == in_peaks
    assert abs(qc["frip"] - in_peaks / total) < 1e-6
    assert qc["covered_bases"] == covered and qc["genome_bases"] == length
    assert abs(qc["covered_fraction"] - covered / length) < 1e-6
    assert abs(qc["cfrip"] - qc["frip"] * qc["covered_fraction"]) < 1e-9
    assert 0.1 < qc["frip"] < 0.9  # H3K4me3: a strong, punctate mark


def test_json_and_table_hold_the_verdict_and_parameters(k562):
    _, paths, _ = k562
    qc = json.load(open(paths["qc_json"]))
    for key in ("reads_total", "reads_in_peaks", "frip", "covered_fraction", "cfrip", "peaks", "pass"):
        assert key in qc
    assert qc["pass"] is False and qc["failed_checks"] == [f"{qc['peaks']} peaks < 10000"]
    assert qc["parameters"]["assay"] == "chip" and qc["parameters"]["min_frip"] == 0.01
    assert "--call-summits" in qc["parameters"]["macs3_command"]
    lines = open(paths["qc"]).read().splitlines()
    header, row = lines[-2].lstrip("#").split("\t"), lines[-1].split("\t")
    table = dict(zip(header, row))
    assert table["verdict"] == "FAIL" and int(table["reads_total"]) == qc["reads_total"]
    assert abs(float(table["frip"]) - qc["frip"]) < 1e-5
    assert any(line.startswith("##command=deepgmap-bam-to-peaks") for line in lines)
    with open(paths["qc_plot"], "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_narrowpeak_is_valid_column_by_column(k562):
    _, paths, hg19 = k562
    rows = [line.rstrip("\n").split("\t") for line in open(paths["peaks"])]
    summits = [line.rstrip("\n").split("\t") for line in open(paths["summits"])]
    assert 500 < len(rows) == len(summits)
    blacklist = read_peaks(str(hg19 / "hg19-blacklist.v2.bed")).by_chrom["chr22"]
    previous = ("", -1)
    for row, summit in zip(rows, summits):
        assert len(row) == 10
        chrom, start, end, name, score, strand = row[0], int(row[1]), int(row[2]), row[3], int(row[4]), row[5]
        assert chrom == "chr22" and 0 <= start < end <= 51_304_566
        assert name.startswith("K562_H3K4me3_peak_") and 0 <= score <= 1000 and strand == "."
        signal, p_value, q_value = map(float, row[6:9])
        assert signal > 0 and p_value > 0 and q_value >= -np.log10(0.01) - 1e-9
        offset = int(row[9])
        assert 0 <= offset < end - start
        assert summit[0] == chrom and int(summit[1]) == start + offset and summit[3] == name
        assert (chrom, start) >= previous
        previous = (chrom, start)
        assert not ((blacklist.starts < end) & (blacklist.ends > start)).any()
    # Our own reader accepts it, summits included.
    assert read_peaks(paths["peaks"]).count == len(rows)


def test_thresholds_decide_the_verdict_and_fail_on_qc_exit_code(k562, tmp_path):
    _, _, hg19 = k562
    bam = str(hg19 / "K562_H3K4me3.chr22.bam")
    common = ["--bam", bam, "--peaks", str(tmp_path / "p.narrowPeak"), "--qc-json", str(tmp_path / "qc.json")]
    assert main(common + ["--min-peaks", "500", "--fail-on-qc", "--threads", "2"]) == 0
    assert json.load(open(tmp_path / "qc.json"))["pass"] is True
    assert main(common + ["--min-peaks", "500", "--min-cfrip", "0.5", "--fail-on-qc"]) == EXIT_QC_FAILED
    assert json.load(open(tmp_path / "qc.json"))["failed_checks"][0].startswith("cFRiP")


def test_threads_give_the_same_counts(k562, tmp_path):
    _, paths, hg19 = k562
    assert main(["--bam", str(hg19 / "K562_H3K4me3.chr22.bam"), "--blacklist", str(hg19 / "hg19-blacklist.v2.bed"),
                 "--threads", "2", "--peaks", str(tmp_path / "p"), "--qc-json", str(tmp_path / "q.json")]) == 0
    one, two = json.load(open(paths["qc_json"])), json.load(open(tmp_path / "q.json"))
    for key in ("reads_total", "reads_in_peaks", "covered_bases", "peaks"):
        assert one[key] == two[key]


def test_yeast_atac_paired_end(shared_data, tmp_path):
    yeast = shared_data / "sacCer3"
    out = {k: str(tmp_path / k) for k in ("peaks", "qc.json")}
    assert main(["--bam", str(yeast / "ATAC.example.bam"), "--paired", "--assay", "atac", "--genome-size", "1.2e7",
                 "--min-peaks", "10", "--peaks", out["peaks"], "--qc-json", out["qc.json"]]) == 0
    qc = json.load(open(out["qc.json"]))
    with pysam.AlignmentFile(str(yeast / "ATAC.example.bam")) as bam:
        nuclear = {c: l for c, l in zip(bam.references, bam.lengths) if c != "chrM"}
        counted = sum(1 for r in bam.fetch(until_eof=True)
                      if not (r.is_unmapped or r.is_secondary or r.is_supplementary or r.is_qcfail)
                      and r.reference_name != "chrM")
    assert qc["genome_bases"] == sum(nuclear.values()) and qc["reads_total"] == counted
    assert "-f BAMPE" in qc["parameters"]["macs3_command"] and qc["peaks"] > 10 and qc["pass"] is True
    rows = [line.split("\t") for line in open(out["peaks"])]
    assert all(r[0] in nuclear for r in rows)
    # The example reads were picked around 10 regions: nearly all fall in peaks.
    assert qc["frip"] > 0.5


def test_no_peaks_is_a_fail_not_a_crash(k562, tmp_path):
    _, _, hg19 = k562
    peaks, qc = tmp_path / "p.narrowPeak", tmp_path / "qc.json"
    args = ["--bam", str(hg19 / "K562_H3K4me3.chr22.bam"), "--qvalue", "1e-300", "--peaks", str(peaks),
            "--qc-json", str(qc)]
    assert main(args) == 0
    report = json.load(open(qc))
    assert report["peaks"] == 0 and report["pass"] is False and report["reads_in_peaks"] == 0
    assert peaks.exists() and peaks.read_text() == ""
    assert main(args + ["--fail-on-qc"]) == EXIT_QC_FAILED


def write_bam(path, header, reads):
    with pysam.AlignmentFile(str(path), "wb", header=header) as out:
        for read in reads:
            out.write(read)


@pytest.fixture()
def k562_reads(shared_data):
    with pysam.AlignmentFile(str(shared_data / "hg19" / "K562_H3K4me3.chr22.bam")) as bam:
        header = bam.header.to_dict()
        reads = [read for _, read in zip(range(3000), bam.fetch())]
    return header, reads


def test_unindexed_sorted_bam_is_indexed_privately(shared_data, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(shared_data / "hg19" / "K562_H3K4me3.chr22.bam", folder / "reads.bam")
    os.chmod(folder, 0o555)
    try:
        assert main(["--bam", str(folder / "reads.bam"), "--peaks", str(tmp_path / "p"),
                     "--qc-json", str(tmp_path / "q.json")]) == 0
        assert os.listdir(folder) == ["reads.bam"]
    finally:
        os.chmod(folder, 0o755)
    assert json.load(open(tmp_path / "q.json"))["reads_total"] == 205_035


def test_an_index_older_than_its_bam_is_passed_over(shared_data, test_data, tmp_path):
    """The chr22:20-21 Mb slice of the K562 reads with, beside it, an older index of another BAM
    (the whole chr22 file's): read through it the reads are wrong; a fresh index reads them right."""
    shutil.copy(test_data / "K562_H3K4me3.chr22_20M.bam", tmp_path / "reads.bam")
    shutil.copy(shared_data / "hg19" / "K562_H3K4me3.chr22.bam.bai", tmp_path / "reads.bam.bai")
    os.utime(tmp_path / "reads.bam.bai", (os.path.getmtime(tmp_path / "reads.bam") - 60,) * 2)
    assert main(["--bam", str(tmp_path / "reads.bam"), "--peaks", str(tmp_path / "p"), "--min-peaks", "20",
                 "--qc-json", str(tmp_path / "q.json")]) == 0
    assert json.load(open(tmp_path / "q.json"))["reads_total"] == 17_307


@pytest.mark.parametrize("case", ["unsorted", "unsorted_header", "no_reads", "not_bam", "missing"])
def test_bad_bams_give_one_line_and_no_output(k562_reads, tmp_path, capsys, case):
    header, reads = k562_reads
    bam = tmp_path / "bad.bam"
    if case == "unsorted":
        header = dict(header, HD={"VN": "1.6"})
        write_bam(bam, header, reads[::-1])
    elif case == "unsorted_header":
        write_bam(bam, dict(header, HD={"VN": "1.6", "SO": "queryname"}), reads)
    elif case == "no_reads":
        write_bam(bam, header, [])
        pysam.index(str(bam))
    elif case == "not_bam":
        bam.write_text("chr22\t1\t2\n")
    out = tmp_path / "p.narrowPeak"
    assert main(["--bam", str(bam), "--peaks", str(out), "--qc", str(tmp_path / "qc.tsv")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bam) in err[0], err
    expected = {"unsorted": "sorted by coordinate", "unsorted_header": "sorted by queryname",
                "no_reads": "no mapped reads", "not_bam": "not a BAM", "missing": "not found"}[case]
    assert expected in err[0]
    assert not out.exists() and not (tmp_path / "qc.tsv").exists()


def test_multiqc_gathers_the_samples_frip_and_cfrip(k562, test_data, tmp_path):
    """The real MultiQC (PyPI) reads two samples' --qc-multiqc files into one table."""
    code, paths, _ = k562
    folder = tmp_path / "qc"
    folder.mkdir()
    shutil.copy(paths["qc_multiqc"], folder)
    assert main(["--bam", str(test_data / "K562_H3K4me3.chr22_20M.bam"), "--name", "K562_20M", "--min-peaks", "1",
                 "--peaks", str(tmp_path / "p"), "--qc-json", str(tmp_path / "qc.json"),
                 "--qc-multiqc", str(folder / "K562_20M_mqc.json")]) == 0
    multiqc = Path(sys.executable).parent / "multiqc"
    subprocess.run([str(multiqc), "-q", str(folder), "-o", str(tmp_path / "report"), "--data-format", "json"],
                   check=True)
    data = json.loads((tmp_path / "report" / "multiqc_data" / "multiqc_data.json").read_text())
    table = data["report_saved_raw_data"]["multiqc_deepgmap_bam_to_peaks_table"]
    expected = {qc["sample"]: qc for qc in (json.loads(open(paths["qc_json"]).read()),
                                            json.loads((tmp_path / "qc.json").read_text()))}
    assert set(table) == set(expected) == {"K562_H3K4me3", "K562_20M"}
    for sample, qc in expected.items():
        assert table[sample]["verdict"] == qc["verdict"]
        for key in ("reads_total", "frip", "covered_fraction", "cfrip", "peaks"):
            assert table[sample][key] == pytest.approx(qc[key])
    assert (tmp_path / "report" / "multiqc_report.html").stat().st_size > 0


# What Galaxy's MultiQC tool (tools-iuc multiqc.xml) does with one "Custom Content" entry of
# plot type table: links each dataset as file_<entry>_<n> and passes this configuration.
GALAXY_MULTIQC_CONFIG = """custom_data:
    section_0:
        file_format: 'tsv'
        section_name: 'DeepGMAP QC'
        title: ''
        description: ''
        plot_type: 'table'
        pconfig:
            id: 'section_0_table'
            ylab: ''
            xlab: ''
sp:
    section_0:
        fn: 'file_0_*'
"""


def test_multiqc_reads_the_tabular_qc_as_galaxys_multiqc_tool_gives_it(test_data, tmp_path):
    """The real MultiQC gathers two samples' --qc-multiqc-table outputs (what the Galaxy wrapper's
    "QC for MultiQC" holds) into one table, laid out and configured as Galaxy's MultiQC tool does."""
    folder = tmp_path / "multiqc_WDir" / "custom_content_0"
    folder.mkdir(parents=True)
    expected = {}
    for n, (sample, min_peaks) in enumerate((("reads_A", "1"), ("reads_B", "1000"))):
        assert main(["--bam", str(test_data / "K562_H3K4me3.chr22_20M.bam"), "--name", sample, "--min-peaks",
                     min_peaks, "--peaks", str(tmp_path / f"{sample}.narrowPeak"), "--qc-json",
                     str(tmp_path / f"{sample}.json"), "--qc-multiqc-table", str(folder / f"file_0_{n}")]) == 0
        expected[sample] = json.loads((tmp_path / f"{sample}.json").read_text())
    (tmp_path / "config.yml").write_text(GALAXY_MULTIQC_CONFIG)
    multiqc = Path(sys.executable).parent / "multiqc"
    subprocess.run([str(multiqc), "-q", str(tmp_path / "multiqc_WDir"), "-o", str(tmp_path / "report"),
                    "--data-format", "json", "--config", str(tmp_path / "config.yml")], check=True)
    data = json.loads((tmp_path / "report" / "multiqc_data" / "multiqc_data.json").read_text())
    table = data["report_saved_raw_data"]["multiqc_section_0_table"]
    assert set(table) == set(expected)
    for sample, qc in expected.items():
        assert table[sample]["QC"] == qc["verdict"]
        for title, key in (("Reads", "reads_total"), ("FRiP", "frip"), ("cFRiP", "cfrip"), ("Peaks", "peaks")):
            assert table[sample][title] == pytest.approx(qc[key], rel=1e-5)
    assert {qc["verdict"] for qc in expected.values()} == {"PASS", "FAIL"}


def test_a_blacklist_in_another_naming_is_refused(test_data, tmp_path, capsys):
    renamed = tmp_path / "blacklist.bed"
    renamed.write_text("".join(line.removeprefix("chr") for line in open(test_data / "blacklist.bed")))
    code = main(["--bam", str(test_data / "K562_H3K4me3.chr22_20M.bam"), "--blacklist", str(renamed),
                 "--peaks", str(tmp_path / "p")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "names none of the BAM's chromosomes (blacklist: 22; BAM: chr" in err[0]
    assert not (tmp_path / "p").exists()


def test_control_on_other_chromosomes_is_refused(shared_data, tmp_path, capsys):
    code = main(["--bam", str(shared_data / "hg19" / "K562_H3K4me3.chr22.bam"),
                 "--control", str(shared_data / "sacCer3" / "ATAC.example.bam"), "--peaks", str(tmp_path / "p")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "none on the treatment's chromosomes" in err[0]
    assert not (tmp_path / "p").exists()


def test_bad_parameters(shared_data, tmp_path, capsys):
    bam = str(shared_data / "hg19" / "K562_H3K4me3.chr22.bam")
    for args, expected in ((["--genome-size", "human"], "--genome-size"), (["--name", "a b"], "--name")):
        assert main(["--bam", bam, "--peaks", str(tmp_path / "p"), *args]) == 1
        assert expected in capsys.readouterr().err
