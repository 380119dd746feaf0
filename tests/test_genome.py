import gzip
import os
import shutil

import numpy as np
import pysam
import pytest

from deepgmap_core.errors import InputError
from deepgmap_core.genome import (Genome, base_codes, one_hot_encode, reverse_complement,
                                  reverse_complement_one_hot)


def test_one_hot_order_is_agct_and_other_letters_are_zero():
    encoded = one_hot_encode("AGCTNagctnRX-")
    assert encoded.shape == (13, 4)
    np.testing.assert_array_equal(encoded[:4], np.eye(4))
    np.testing.assert_array_equal(encoded[5:9], np.eye(4))
    assert not encoded[4].any() and not encoded[9:].any()
    assert encoded.dtype == np.float32
    np.testing.assert_array_equal(base_codes(b"AGCTNagctn"), [0, 1, 2, 3, 4, 0, 1, 2, 3, 4])


def test_reverse_complement_of_strings():
    assert reverse_complement("AACGTN") == "NACGTT"
    assert reverse_complement("acgR") == "Ycgt"
    assert reverse_complement(b"GATTACA") == b"TGTAATC"


def test_one_hot_reverse_complement_matches_string_reverse_complement_on_real_sequence(shared_data):
    with Genome(str(shared_data / "hg19" / "chr20.fa.gz")) as genome:
        sequence = genome.fetch("chr20", 30_000_000, 30_010_000)
    assert len(sequence) == 10_000 and set(sequence.upper()) <= set(b"ACGTN")
    forward = one_hot_encode(sequence)
    np.testing.assert_array_equal(reverse_complement_one_hot(forward), one_hot_encode(reverse_complement(sequence)))
    np.testing.assert_array_equal(reverse_complement_one_hot(reverse_complement_one_hot(forward)), forward)
    # Batches: the rule works on (..., length, 4) arrays.
    batch = np.stack([forward[:1000], forward[1000:2000]])
    np.testing.assert_array_equal(reverse_complement_one_hot(batch)[1], reverse_complement_one_hot(forward[1000:2000]))


@pytest.fixture()
def genome_copies(tmp_path, test_data):
    """The example genome as bgzip (with its index), plain gzip and plain FASTA, in a read-only folder."""
    folder = tmp_path / "genomes"
    folder.mkdir()
    bgzip = folder / "bgzip.fa.gz"
    shutil.copy(test_data / "genome.fa.gz", bgzip)
    with gzip.open(bgzip, "rb") as source:
        text = source.read()
    (folder / "plain.fa").write_bytes(text)
    with gzip.open(folder / "gzip.fa.gz", "wb") as target:
        target.write(text)
    os.chmod(folder, 0o555)
    yield folder
    os.chmod(folder, 0o755)


def test_plain_gzip_and_bgzip_fasta_read_the_same(genome_copies):
    lengths, pieces = [], []
    for name in ("bgzip.fa.gz", "gzip.fa.gz", "plain.fa"):
        with Genome(str(genome_copies / name)) as genome:
            lengths.append(genome.lengths)
            pieces.append(genome.fetch("chr22", 20_500_000, 20_500_100) + genome.fetch("chr20", 4_999_990, 5_000_000))
            assert genome.names == ["chr20", "chr22"]
    assert lengths[0] == {"chr20": 5_000_000, "chr22": 21_000_000}
    assert lengths[0] == lengths[1] == lengths[2]
    assert pieces[0] == pieces[1] == pieces[2]
    assert set(pieces[0]) <= set(b"ACGTacgt")
    # Nothing written beside the inputs (their folder is read-only; the index lives in a temporary folder).
    assert sorted(os.listdir(genome_copies)) == ["bgzip.fa.gz", "gzip.fa.gz", "plain.fa"]


def test_existing_index_beside_bgzip_is_used(test_data):
    with Genome(str(test_data / "genome.fa.gz")) as genome:
        assert genome._tmpdir is None
        assert genome.lengths["chr22"] == 21_000_000


def test_an_index_older_than_its_fasta_is_not_used(tmp_path, test_data):
    """The real chr20 piece indexed, then its header renamed (every offset moves by 9 bytes): the
    stale .fai beside it would read header bytes into the sequence; a fresh index reads it right."""
    with Genome(str(test_data / "genome.fa.gz")) as genome:
        expected = genome.fetch("chr20", 1_000_000, 1_000_100)
        text = b">chr20\n" + genome.fetch("chr20", 0, 5_000_000) + b"\n"
    path = tmp_path / "genome.fa"
    path.write_bytes(text)
    pysam.faidx(str(path))
    path.write_bytes(text.replace(b">chr20\n", b">chr20 edited\n", 1))
    os.utime(path, (os.path.getmtime(str(path) + ".fai") + 10,) * 2)
    with Genome(str(path)) as genome:
        assert genome._tmpdir is not None and genome.fetch("chr20", 1_000_000, 1_000_100) == expected


@pytest.mark.parametrize("content, message", [
    (None, "not found"),
    (b"", "empty"),
    (b"this is not a FASTA file\n", "not a valid FASTA"),
    (b"\x1f\x8b\x08\x00garbage", "truncated or not valid gzip"),
    (b">chrA\nACGT\n>chrB\nGGGG\n>chrA\nTTTTTTTT\n", "two sequences named chrA"),
])
def test_bad_fasta_raises_one_clear_error(tmp_path, content, message):
    path = tmp_path / "genome.fa"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message) as error:
        Genome(str(path))
    assert str(path) in str(error.value) and "\n" not in str(error.value)
