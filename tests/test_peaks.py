import gzip
import re

import numpy as np
import pytest

from deepgmap_core.errors import InputError
from deepgmap_core import peaks
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


def test_a_number_beyond_64_bits_is_named(tmp_path):
    (tmp_path / "p.bed").write_text("chr1\t100\t200\nchr1\t300\t123456789012345678901234\n")
    with pytest.raises(InputError, match=r"p.bed:2: malformed BED line: a number too large for a coordinate"):
        read_peaks(str(tmp_path / "p.bed"))


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


def read_as_text(path, monkeypatch):
    """read_peaks with every file read a line at a time, as text (the reader for odd files)."""
    with monkeypatch.context() as patch:
        patch.setattr(peaks, "_parse_bytes", lambda data: None)
        return read_peaks(path)


def assert_same_peaks(ours, reference):
    assert list(ours.by_chrom) == list(reference.by_chrom)
    for chrom, intervals in reference.by_chrom.items():
        for column in ("starts", "ends", "summits", "lines"):
            np.testing.assert_array_equal(getattr(ours.by_chrom[chrom], column), getattr(intervals, column))


def real_peak_files(test_data, shared_data):
    return sorted(test_data.glob("*.bed")) + [test_data / "H3K4me3.narrowPeak"] + \
        sorted((shared_data / "hg19").glob("*.bed")) + sorted((shared_data / "sacCer3").glob("*.bed"))


def test_real_files_parsed_as_bytes_read_as_they_do_as_text(test_data, shared_data, monkeypatch):
    for path in real_peak_files(test_data, shared_data):
        assert peaks._parse_bytes(path.read_bytes()) is not None, path  # the byte parser took the file
        assert_same_peaks(read_peaks(str(path)), read_as_text(str(path), monkeypatch))


def shuffled_lines(text, seed):
    lines = text.splitlines(keepends=True)
    return "".join(lines[i] for i in np.random.default_rng(seed).permutation(len(lines)))


# Each edge case: a function of a real file's text, and whether the byte parser takes the result.
EDGE_CASES = {
    "crlf": (lambda text: text.replace("\n", "\r\n"), True),
    "cr": (lambda text: text.replace("\n", "\r"), True),
    "no final newline": (lambda text: text.rstrip("\n"), True),
    "headers and blank lines": (lambda text: "track name=x\nbrowser position chr1\n#c\t1\t2\n\n \t \n"
                                + text.replace("\n", "\n\n", 3), True),
    "shuffled chromosomes": (lambda text: shuffled_lines(text, 1), True),
    "summit -1": (lambda text: re.sub(r"^((?:[^\t\n]*\t){9})\d+$", r"\1-1", text, count=9, flags=re.M), True),
    "leading space": (lambda text: " " + text, True),
    "spaces": (lambda text: text.replace("\t", " "), False),
    "a longer line": (lambda text: text.replace("\n", "\textra\n", 1), False),
    "plus sign": (lambda text: re.sub(r"^([^\t\n]*\t)", r"\1+", text, count=1, flags=re.M), False),
    "non-ascii name": (lambda text: text.replace("chr", "chré", 1), False),
    "a name of 65 bytes": (lambda text: text.replace("chr", "c" * 63, 1), False),
    "form feed": (lambda text: text.replace("\n", "\f", 1), False),
}


@pytest.mark.parametrize("case, source", [(case, source) for case in EDGE_CASES
                                          for source in ("CTCF.bed", "H3K4me3.narrowPeak", "blacklist.bed")
                                          if case != "summit -1" or source.endswith("narrowPeak")])
def test_edge_cases_read_as_they_do_as_text(case, source, test_data, tmp_path, monkeypatch):
    edit, parsed_as_bytes = EDGE_CASES[case]
    text = edit((test_data / source).read_text())
    assert text != (test_data / source).read_text()  # the case is in the file
    path = tmp_path / source
    path.write_bytes(text.encode())
    assert (peaks._parse_bytes(path.read_bytes()) is not None) == parsed_as_bytes
    try:
        reference = read_as_text(str(path), monkeypatch)
    except InputError as error:
        with pytest.raises(InputError) as ours:
            read_peaks(str(path))
        assert str(ours.value) == str(error)
    else:
        assert_same_peaks(read_peaks(str(path)), reference)
