import gzip

import numpy as np
import pytest

from deepgmap_core.errors import InputError
from deepgmap_core.peaks import default_class_name, read_peaks


def test_narrowpeak_summits_and_bed_midpoints_on_real_files(test_data):
    narrow = read_peaks(str(test_data / "H3K4me3.narrowPeak"))
    lines = [line.split("\t") for line in open(test_data / "H3K4me3.narrowPeak")]
    assert narrow.count == len(lines) == 26 and list(narrow.by_chrom) == ["chr22"]
    expected = sorted((int(f[1]), int(f[1]) + int(f[9]), n) for n, f in enumerate(lines, 1))
    chr22 = narrow.by_chrom["chr22"]
    np.testing.assert_array_equal(chr22.starts, [e[0] for e in expected])
    np.testing.assert_array_equal(chr22.summits, [e[1] for e in expected])
    np.testing.assert_array_equal(chr22.lines, [e[2] for e in expected])
    bed = read_peaks(str(test_data / "CTCF.bed"))
    for intervals in bed.by_chrom.values():
        np.testing.assert_array_equal(intervals.summits, (intervals.starts + intervals.ends) // 2)
        assert (np.diff(intervals.starts) >= 0).all()


def test_gzip_spaces_and_headers_read_the_same(test_data, tmp_path):
    text = open(test_data / "H3K4me3.narrowPeak").read()
    with gzip.open(tmp_path / "p.narrowPeak.gz", "wt") as handle:
        handle.write("track name=h3k4me3\n# comment\n\n" + text)
    (tmp_path / "spaces.narrowPeak").write_text(text.replace("\t", "  "))
    reference = read_peaks(str(test_data / "H3K4me3.narrowPeak")).by_chrom["chr22"]
    for name, line_shift in (("p.narrowPeak.gz", 3), ("spaces.narrowPeak", 0)):
        other = read_peaks(str(tmp_path / name)).by_chrom["chr22"]
        np.testing.assert_array_equal(other.summits, reference.summits)
        np.testing.assert_array_equal(other.lines, reference.lines + line_shift)


def test_summit_minus_one_means_midpoint(tmp_path):
    (tmp_path / "p.narrowPeak").write_text("chr1\t100\t200\tp\t0\t.\t1\t1\t1\t-1\nchr1\t300\t400\tq\t0\t.\t1\t1\t1\t10\n")
    np.testing.assert_array_equal(read_peaks(str(tmp_path / "p.narrowPeak")).by_chrom["chr1"].summits, [150, 310])


def test_short_line_in_narrowpeak_file_is_named(tmp_path):
    (tmp_path / "p.narrowPeak").write_text("chr1\t100\t200\tp\t0\t.\t1\t1\t1\t5\nchr1\t300\t400\n")
    with pytest.raises(InputError, match=r"p.narrowPeak:2: malformed narrowPeak line: 3 column\(s\)"):
        read_peaks(str(tmp_path / "p.narrowPeak"))


def test_default_class_names():
    assert default_class_name("/x/CTCF.narrowPeak.gz") == "CTCF"
    assert default_class_name("K562.H3K4me3.bed") == "K562.H3K4me3"
    assert default_class_name("peaks") == "peaks"


def test_blank_lines_inside_keep_line_numbers(test_data, tmp_path):
    lines = open(test_data / "H3K4me3.narrowPeak").read().splitlines(keepends=True)
    (tmp_path / "p.narrowPeak").write_text("".join(lines[:10]) + "\n  \n" + "".join(lines[10:]) + "\n")
    reference = read_peaks(str(test_data / "H3K4me3.narrowPeak")).by_chrom["chr22"]
    other = read_peaks(str(tmp_path / "p.narrowPeak")).by_chrom["chr22"]
    np.testing.assert_array_equal(other.starts, reference.starts)
    np.testing.assert_array_equal(other.lines, np.where(reference.lines > 10, reference.lines + 2, reference.lines))
