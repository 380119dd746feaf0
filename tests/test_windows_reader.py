"""The vectorised windows-table reader against the reader it replaced (kept below as the oracle):
the same columns on the real table, on tables made by make-training-windows and on generated
edge cases, read in one block and in blocks of a few lines (in one thread and in three); a bad
cell still names its line."""

import gzip

import numpy as np
import pytest

from deepgmap_core import windows
from deepgmap_core.cli.make_training_windows import main
from deepgmap_core.errors import InputError
from deepgmap_core.fileio import open_text
from deepgmap_core.genome import ONE_HOT_ORDER
from deepgmap_core.parallel import in_order
from deepgmap_core.windows import SPLITS, format_rows, read_windows_table


def reference_read_windows_table(path):
    """The reader before the vectorised one (one Python string per cell), as it was."""
    metadata, header, header_lines = {}, None, 0
    with open_text(path, "windows table") as handle:
        for line in handle:
            header_lines += 1
            if line.startswith("##"):
                key, _, value = line[2:].rstrip("\n").partition("=")
                metadata[key] = value
            elif line.startswith("#"):
                header = line[1:].rstrip("\n").split("\t")
                break
            else:
                break
        if header is None or header[:4] != ["chrom", "start", "end", "split"]:
            raise InputError(f"{path}: not a windows table (no '#chrom start end split ...' header)")
        if metadata.get("one_hot_order", ONE_HOT_ORDER) != ONE_HOT_ORDER:
            raise InputError(f"{path}: made for one-hot order {metadata['one_hot_order']}, this suite uses "
                             f"{ONE_HOT_ORDER}")
        body = handle.read()
    cells = np.array(body.replace("\n", "\t").split("\t")[:-1] if body else [], dtype=object)
    if len(cells) % len(header):
        raise InputError(f"{path}: rows do not all have the {len(header)} columns of the header")
    rows = cells.reshape(-1, len(header))

    def fail(row, text):
        raise InputError(f"{path}:{header_lines + row + 1}: {text}")

    def whole_numbers(column, what):
        column = column.astype(str)
        digits = np.char.isdigit(column)
        if not digits.all():
            row = int(np.argmin(digits))
            fail(row, f"{what} {str(column[row])!r} is not a whole number >= 0")
        return column.astype(np.int64)

    starts, ends = whole_numbers(rows[:, 1], "start"), whole_numbers(rows[:, 2], "end")
    splits = rows[:, 3].astype(str)
    checks = [(np.isin(rows[:, 4:], ("0", "1")).all(axis=1), "a label other than 0 or 1"),
              (np.isin(splits, SPLITS), f"a split other than {', '.join(SPLITS)}"),
              (ends > starts, "end <= start"),
              (ends - starts == (ends - starts)[:1], "a window width unlike the first row's")]
    for good, text in checks:
        if not good.all():
            fail(int(np.argmin(good)), text)
    return windows.WindowsTable(metadata, header[4:], rows[:, 0].astype(str), starts, ends, splits,
                                rows[:, 4:].astype(np.uint8))


@pytest.fixture(params=["one block", "blocks of a few lines", "blocks of a few lines in 3 threads"])
def block_size(request, monkeypatch):
    """Every test runs with the reader's block size and with blocks of ~300 bytes, so that lines,
    line numbers and names are carried across many block boundaries, and with those blocks parsed
    by 3 threads (added in order, so the same columns and the same first bad line)."""
    if request.param != "one block":
        monkeypatch.setattr(windows, "_BODY_BLOCK", 300)
    if request.param.endswith("threads"):
        monkeypatch.setattr(windows, "in_order", lambda function, items, threads: in_order(function, items, 3))
    return request.param


def assert_same(ours, reference):
    assert ours.metadata == reference.metadata and ours.class_names == reference.class_names
    for name in ("chroms", "starts", "ends", "splits", "labels"):
        mine, theirs = getattr(ours, name), getattr(reference, name)
        assert mine.dtype.kind == theirs.dtype.kind and mine.shape == theirs.shape, name
        np.testing.assert_array_equal(mine, theirs, err_msg=name)
    assert ours.starts.dtype == ours.ends.dtype == np.int64 and ours.labels.dtype == np.uint8


def synthetic_table(n_classes, rows_per_chrom=(40, 1, 25), seed=0):
    """A table as make-training-windows writes it, with random labels: chromosomes of several
    name lengths and each split, starts crossing digit counts."""
    rng = np.random.default_rng(seed)
    names = [f"c{i}" for i in range(n_classes)]
    text = [b"##tool=make-training-windows\n##window=1000\n",
            ("#chrom\tstart\tend\tsplit\t" + "\t".join(names) + "\n").encode()]
    for (chrom, split), n_rows in zip((("chr2", "train"), ("chrUn_gl000220", "valid"), ("chrX", "test")),
                                      rows_per_chrom):
        starts = np.sort(rng.choice(2_000_000, n_rows, replace=False)) * 7
        text.append(format_rows(chrom, split, starts, 1000, rng.random((n_rows, n_classes)) < 0.3))
    return b"".join(text)


def check_against_reference(tmp_path, content, name="table.tsv"):
    path = tmp_path / name
    path.write_bytes(content)
    ours = read_windows_table(str(path))
    reference_path = tmp_path / f"reference_{name}"
    plain = gzip.decompress(content) if content[:2] == b"\x1f\x8b" else content
    reference_path.write_bytes(plain if plain.endswith(b"\n") or not plain else plain + b"\n")
    assert_same(ours, reference_read_windows_table(str(reference_path)))
    return ours


def test_the_real_table_reads_as_before(test_data, block_size):
    assert_same(read_windows_table(str(test_data / "windows.tsv")),
                reference_read_windows_table(str(test_data / "windows.tsv")))


def test_a_table_made_by_make_training_windows_reads_as_before(test_data, tmp_path, block_size):
    out = tmp_path / "made.tsv.gz"
    assert main(["--genome", str(test_data / "genome.fa.gz"), "--peaks", str(test_data / "CTCF.bed"),
                 str(test_data / "H3K4me3.narrowPeak"), "--valid-chroms", "chr22", "--keep-negatives", "0.5",
                 "-o", str(out)]) == 0
    table = check_against_reference(tmp_path, out.read_bytes(), "made.tsv.gz")
    assert set(table.chroms) == {"chr20", "chr22"} and table.labels.any()


@pytest.mark.parametrize("n_classes", [1, 2, 500])
def test_generated_tables_read_as_before(tmp_path, block_size, n_classes):
    table = check_against_reference(tmp_path, synthetic_table(n_classes))
    assert list(table.chroms[[0, 40, 41]]) == ["chr2", "chrUn_gl000220", "chrX"]
    assert list(table.splits[[0, 40, 41]]) == ["train", "valid", "test"]


def test_gzip_no_final_newline_and_line_ends_of_text_mode(tmp_path, block_size):
    content = synthetic_table(3)
    check_against_reference(tmp_path, gzip.compress(content), "table.tsv.gz")
    check_against_reference(tmp_path, content[:-1], "no_final_newline.tsv")
    check_against_reference(tmp_path, content.replace(b"\n", b"\r\n"), "crlf.tsv")


def test_a_cr_lf_split_between_reads_ends_one_line(tmp_path, monkeypatch):
    """Reads of one byte past the header's: many reads end between a line's CR and its LF."""
    monkeypatch.setattr(windows, "_BODY_BLOCK", 1)
    content = synthetic_table(100, rows_per_chrom=(800, 1, 25)).replace(b"\n", b"\r\n")
    assert len(content) > 2 * (1 << 16)  # the header is read 64 KiB at a time
    assert len(check_against_reference(tmp_path, content, "crlf.tsv").starts) == 826


def test_an_empty_body_gives_empty_columns(tmp_path, block_size):
    table = check_against_reference(tmp_path, b"##window=1000\n#chrom\tstart\tend\tsplit\tA\tB\n")
    assert table.labels.shape == (0, 2) and table.class_names == ["A", "B"]


@pytest.mark.parametrize("cut", [40, 5000])
def test_a_truncated_gzip_table_is_one_line_error(tmp_path, cut):
    """Cut in the header lines and in the body."""
    path = tmp_path / "cut.tsv.gz"
    path.write_bytes(gzip.compress(synthetic_table(50, (2000, 10, 10)))[:cut])
    with pytest.raises(InputError, match=f"^{path}: windows table is truncated or not valid gzip"):
        read_windows_table(str(path))


BAD_LINES = {  # the row's cells, changed: (column or None for the whole line, new text, expected message)
    "start": (1, "387600.5", "start '387600.5' is not a whole number >= 0"),
    "empty end": (2, "", "end '' is not a whole number >= 0"),
    "huge start": (1, "1" * 19, f"start '{'1' * 19}' has more than 18 digits"),
    "label": (5, "x", "a label other than 0 or 1"),
    "two-digit label": (4, "10", "a label other than 0 or 1"),
    "empty label": (6, "", "a label other than 0 or 1"),
    "split": (3, "tran", "a split other than train, valid, test"),
    "end before start": (2, "5", "end <= start"),
    "width": (2, None, "a window width unlike the first row's"),
    "extra column": (None, "\t1", "8 columns, the header has 7"),
    "missing column": (None, "", "6 columns, the header has 7"),
    "blank line": (None, None, "1 columns, the header has 7"),
    "long name": (0, "c" * 5000, "chrom, start, end and split take more than 4096 bytes"),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
@pytest.mark.parametrize("row", [0, 30, 65])
def test_a_bad_line_names_its_line(tmp_path, block_size, case, row):
    column, value, expected = BAD_LINES[case]
    lines = synthetic_table(3).decode().splitlines(keepends=True)
    index = 3 + row  # after two provenance lines and the column names
    cells = lines[index].rstrip("\n").split("\t")
    if case == "width":
        cells[2] = str(int(cells[2]) + 1) if row else str(int(cells[2]) - 1)
    elif case == "missing column":
        cells.pop()
    elif case == "extra column":
        cells[-1] += value
    elif case == "blank line":
        cells = [""]
    else:
        cells[column] = value
    lines[index] = "\t".join(cells) + "\n"
    if case == "width" and row == 0:  # the first row sets the width: the second row is then the odd one
        expected_line = index + 2
    else:
        expected_line = index + 1
    path = tmp_path / "bad.tsv"
    path.write_text("".join(lines))
    with pytest.raises(InputError, match=f"^{path}:{expected_line}: {expected}$"):
        read_windows_table(str(path))


def test_the_first_bad_line_is_named(tmp_path, block_size):
    """The first bad line of the file, whatever is wrong with the lines after it (the reference
    reader named the first line failing its first failing check)."""
    lines = synthetic_table(3).decode().splitlines(keepends=True)
    lines[53] = lines[53].replace("test", "tset")
    lines[63] = lines[63].replace("test\t", "test\t2", 1)
    path = tmp_path / "bad.tsv"
    path.write_text("".join(lines))
    with pytest.raises(InputError, match=f"^{path}:54: a split other than train, valid, test$"):
        read_windows_table(str(path))


@pytest.mark.parametrize("content, expected", [
    (b"", "not a windows table"), (b"chr1\t0\t1000\ttrain\t1\n", "not a windows table"),
    (b"##one_hot_order=ACGT\n#chrom\tstart\tend\tsplit\tA\n", "made for one-hot order ACGT, this suite uses AGCT")])
def test_the_header_is_checked(tmp_path, content, expected):
    path = tmp_path / "t.tsv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=expected):
        read_windows_table(str(path))
