"""Saliency on the real CTCF model (test-data/CTCF_chr20.keras, 200 bp windows): the corrected
gradient x input agrees with in-silico mutagenesis on a planted CTCF site, both put the positive
contribution on the motif, the summed gradient of the original does neither; ISM equals the
logits of explicitly written mutants; 0 at N; predict-bigwig --saliency-method ism."""



import keras
import numpy as np
import pyBigWig
import pytest

from deepgmap_core.cli.predict_bigwig import main
from deepgmap_core.genome import ONE_HOT_ORDER, Genome, one_hot_encode
from deepgmap_core.interpret import (class_logits, gradient_saliency, input_gradients, ism_saliency,
                                     mutant_logits)
from deepgmap_core.models.files import load_model
from deepgmap_core.motifs import read_motif_db
from finite_differences import saliency_by_finite_differences

# Background windows on chr20 away from every CTCF.bed region, without N.
BACKGROUNDS = (1_500_000, 4_200_000)
# Positions whose value reaches this fraction of the largest magnitude (in either method) are the
# ones a saliency track shows; elsewhere both values are near 0 and their differences are
# second-order effects of the same size, which say nothing about whether the salient bases agree.
SHOWN_FRACTION = 0.1


@pytest.fixture(scope="module")
def ctcf(test_data):
    model, info = load_model(str(test_data / "CTCF_chr20.keras"), compile=False)
    return model, info.window


@pytest.fixture(scope="module")
def consensus(test_data):
    """The most likely base per position of JASPAR's CTCF cluster C055 (CCACCAGGGGGC)."""
    names, matrices = read_motif_db(str(test_data / "JASPAR2024_CORE_clusters.meme"))
    matrix = matrices[[name.split(":")[0] for name in names].index("C055")]
    return "".join(np.array(list("ACGT"))[matrix.argmax(axis=1)])


@pytest.fixture(scope="module")
def planted(test_data, ctcf, consensus):
    """(background windows, the same with the consensus in the middle, the motif's first position)."""
    _, window = ctcf
    first = (window - len(consensus)) // 2
    with Genome(str(test_data / "genome.fa.gz")) as genome:
        backgrounds = [genome.fetch("chr20", start, start + window).upper().decode() for start in BACKGROUNDS]
    with_motif = [seq[:first] + consensus + seq[first + len(consensus):] for seq in backgrounds]
    encode = lambda seqs: np.stack([one_hot_encode(seq) for seq in seqs])  # noqa: E731
    return encode(backgrounds), encode(with_motif), first


def logits_of(model, x):
    return keras.ops.convert_to_numpy(class_logits(model)(x))[:, 0].astype(np.float64)


def test_corrected_gradient_and_ism_agree_on_a_planted_ctcf_site(ctcf, planted, consensus):
    model, window = ctcf
    background, x, first = planted
    assert background.any(axis=2).all()
    # The premise: the model reads the planted site (CTCF logit up by more than 2).
    assert (logits_of(model, x) - logits_of(model, background) > 2).all()
    gradient = gradient_saliency(model, x, 1)[..., 0]
    ism = ism_saliency(model, x)[..., 0]
    summed = input_gradients(model, x, 0).sum(axis=2)
    motif = np.zeros(window, dtype=bool)
    motif[first:first + len(consensus)] = True
    for i in range(len(x)):
        shown = ((np.abs(gradient[i]) >= SHOWN_FRACTION * np.abs(gradient[i]).max())
                 | (np.abs(ism[i]) >= SHOWN_FRACTION * np.abs(ism[i]).max()))
        assert shown.sum() >= len(consensus)
        r = np.corrcoef(gradient[i, shown], ism[i, shown])[0, 1]
        assert r > 0.8, (i, r)
        # 12 of 200 bases carry most of what raises the CTCF logit, in both.
        for values in (gradient[i], ism[i]):
            positive = np.clip(values, 0, None)
            assert positive[motif].sum() > 0.5 * positive.sum()
        # The original's sum over the channels is dominated by the part no base change can make.
        assert np.corrcoef(summed[i, shown], ism[i, shown])[0, 1] < r - 0.5
        assert np.clip(summed[i], 0, None)[motif].sum() < 0.5 * np.clip(summed[i], 0, None).sum()


def test_corrected_gradient_is_zero_at_n_and_equals_finite_differences(ctcf, planted):
    model, _ = ctcf
    x = planted[1][:1].copy()
    x[0, 20:26] = 0  # a run of N
    gradient = gradient_saliency(model, x, 1)[0, :, 0]
    raw = input_gradients(model, x, 0)[0]
    assert (gradient[20:26] == 0).all() and np.abs(raw[20:26]).max() > 0
    assert (ism_saliency(model, x)[0, 20:26, 0] == 0).all()
    # The correction is exercised: it removes a large part of the raw gradient.
    summed = raw.sum(axis=1)
    assert np.abs(gradient - summed).max() > 0.5 * np.abs(gradient).max()
    finite = saliency_by_finite_differences(class_logits(model), x, np.arange(len(gradient)))
    assert (finite[20:26] == 0).all()
    # A ReLU kink within the step makes the odd base differ: the whole window must follow.
    assert np.corrcoef(gradient, finite)[0, 1] > 0.99
    assert np.median(np.abs(gradient - finite)) < 0.02 * np.abs(gradient).max()


def test_ism_equals_explicit_mutants(ctcf, planted):
    model, window = ctcf
    x = planted[1][:1].copy()
    x[0, 30] = 0  # an N: all four nucleotides are substitutions there
    sequence = "".join(np.where(x[0].any(axis=1), np.array(list(ONE_HOT_ORDER))[x[0].argmax(axis=1)], "N"))
    positions = [0, 30, 97, 199]
    mutants = [sequence[:p] + base + sequence[p + 1:] for p in positions for base in ONE_HOT_ORDER]
    expected = logits_of(model, np.stack([one_hot_encode(m) for m in mutants])).reshape(len(positions), 4)
    # 100 mutants a batch: the three or four mutants of a position can be split across batches.
    found = mutant_logits(model, x, batch_size=100)[0, positions, :, 0]
    np.testing.assert_allclose(found, expected, atol=1e-4)
    own = logits_of(model, x)[0]
    ism = ism_saliency(model, x, batch_size=100)[0, positions, 0]
    np.testing.assert_allclose(ism, np.where(np.array(positions) == 30, 0, own - expected.mean(axis=1)), atol=1e-4)


def test_predict_bigwig_writes_ism_tracks(ctcf, test_data, tmp_path):
    model, window = ctcf
    start, end = BACKGROUNDS[0], BACKGROUNDS[0] + window + 50  # two overlapping windows
    (tmp_path / "regions.bed").write_text(f"chr20\t{start}\t{end}\n")
    assert main(["--model", str(test_data / "CTCF_chr20.keras"), "--genome", str(test_data / "genome.fa.gz"),
                 "--regions", str(tmp_path / "regions.bed"), "--saliency", "--saliency-method", "ism",
                 "--outdir", str(tmp_path / "out")]) == 0
    with pyBigWig.open(str(tmp_path / "out" / "CTCF.saliency.bw")) as bw:
        track = np.array(bw.values("chr20", start, end))
    with Genome(str(test_data / "genome.fa.gz")) as genome:
        x = np.stack([one_hot_encode(genome.fetch("chr20", s, s + window)) for s in (start, end - window)])
    ism = ism_saliency(model, x)[..., 0]
    # The later window's value where they overlap.
    np.testing.assert_allclose(track, np.r_[ism[0, :50], ism[1]], atol=1e-5)


@pytest.mark.parametrize("extra, expected", [
    (["--saliency-method", "ism"], "--saliency-method ism needs --saliency"),
    (["--saliency", "--saliency-method", "ism"], "--saliency needs --regions"),
])
def test_saliency_method_needs_saliency_over_regions(test_data, tmp_path, capsys, extra, expected):
    assert main(["--model", str(test_data / "CTCF_chr20.keras"), "--genome", str(test_data / "genome.fa.gz"),
                 "--outdir", str(tmp_path / "out"), *extra]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
