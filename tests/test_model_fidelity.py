"""The paper's eight models (PAPER_MODELS; additions under other names are not checked) against
the original code (koonimaru/DeepGMAP, last commit 2020-04-20, deepgmap/network_constructors/*.py):
the trainable weights in order and shape, and no bias on any convolution (the original's are
tf.nn.conv2d then ReLU; only its dense layers have biases).

Construction only, at full width (about 15 s for the eight on one core), no training."""



import keras
import pytest

from deepgmap_core.models import PAPER_MODELS, model_names
from deepgmap_core.models.build import build_model
from deepgmap_core.models.layers import FRSSConv1D

CLASSES = 3

# The original's trainable variables in creation order (= its trainable-variable collection), in
# Keras layout: a conv kernel [width, 4 or 1, in, out] without its singleton axis; a TF1 LSTM cell's
# kernel is (in + units, 4 units), its input and recurrent kernels stacked; a dense kernel is
# (flattened length x channels, units). Flattened lengths follow the original's fc1_param
# (VALID convolutions, SAME pooling unless noted). Line numbers are those of the original file.
ORIGINAL = {
    # deepsea.py: W_conv1 l.145, W_conv2 l.154, W_conv21 l.162, W_fc1 l.171 (fc1_param 54, l.84-87),
    # b_fc1 l.176, W_fc4 l.185, b_fc4 l.189.
    "deepsea": [("conv kernel", (8, 4, 320)), ("conv kernel", (8, 320, 480)), ("conv kernel", (8, 480, 960)),
                ("dense kernel", (54 * 960, 925)), ("dense bias", (925,)),
                ("dense kernel", (925, CLASSES)), ("dense bias", (CLASSES,))],
    # basset.py: W_conv1 l.150, W_conv2 l.161, W_conv21 l.168, W_fc1 l.176 (fc1_param 19, l.84-87),
    # b_fc1 l.177, W_fc3 l.182, b_fc3 l.183, W_fc4 l.195, b_fc4 l.196. Its b_conv1/b_conv2/b_conv21
    # (l.151, 162, 169) are created but never added to a convolution: no gradient, not transcribed.
    "basset": [("conv kernel", (19, 4, 300)), ("conv kernel", (11, 300, 200)), ("conv kernel", (7, 200, 200)),
               ("dense kernel", (19 * 200, 1000)), ("dense bias", (1000,)),
               ("dense kernel", (1000, 1000)), ("dense bias", (1000,)),
               ("dense kernel", (1000, CLASSES)), ("dense bias", (CLASSES,))],
    # danq.py: W_conv1 l.165; BiRNN l.177 (LSTMCell(320) forward and backward, l.136/140: kernel, bias each);
    # W_fc1 l.180 (fc1_param 75 steps x 2 x 320, l.70), b_fc1 l.184, W_fc4 l.192, b_fc4 l.196.
    "danq": [("conv kernel", (26, 4, 320)),
             ("lstm kernel", (640, 1280)), ("lstm bias", (1280,)), ("lstm kernel", (640, 1280)), ("lstm bias", (1280,)),
             ("dense kernel", (75 * 640, 925)), ("dense bias", (925,)),
             ("dense kernel", (925, CLASSES)), ("dense bias", (CLASSES,))],
    # conv4.py: W_conv1 l.135, W_conv2 l.147, W_conv21 l.154, W_conv22 l.161, W_fc1 l.168 (fc1_param 28,
    # l.71-76), b_fc1 l.173, W_fc4 l.184, b_fc4 l.189.
    "conv4": [("conv kernel", (9, 4, 320)), ("conv kernel", (9, 320, 480)), ("conv kernel", (7, 480, 480)),
              ("conv kernel", (8, 480, 480)), ("dense kernel", (28 * 480, 925)), ("dense bias", (925,)),
              ("dense kernel", (925, CLASSES)), ("dense bias", (CLASSES,))],
    # conv3frss.py: W_conv1 l.135 (and its rotated view l.141), W_conv2 l.148, W_conv21 l.156,
    # W_fc1 l.170 (fc1_param 119, l.71-75), b_fc1 l.175, W_fc4 l.186, b_fc4 l.191.
    "conv3-frss": [("conv kernel", (9, 4, 320)), ("conv kernel", (9, 320, 480)), ("conv kernel", (7, 480, 480)),
                   ("dense kernel", (119 * 480, 925)), ("dense bias", (925,)),
                   ("dense kernel", (925, CLASSES)), ("dense bias", (CLASSES,))],
    # conv4frss.py: W_conv1 l.148, W_conv2 l.161, W_conv21 l.169, W_conv22 l.176, W_fc1 l.183
    # (fc1_param 28, l.78-83), b_fc1 l.188, W_fc4 l.199, b_fc4 l.204.
    "conv4-frss": [("conv kernel", (9, 4, 320)), ("conv kernel", (9, 320, 480)), ("conv kernel", (7, 480, 480)),
                   ("conv kernel", (8, 480, 480)), ("dense kernel", (28 * 480, 925)), ("dense bias", (925,)),
                   ("dense kernel", (925, CLASSES)), ("dense bias", (CLASSES,))],
    # conv4frssplus.py: W_conv1 l.142, W_conv2 l.157, W_conv21 l.177, W_conv22 l.186, W_fc1 l.195
    # (fc1_param 28, l.74-79), b_fc1 l.200, W_fc4 l.213, b_fc4 l.218.
    "conv4-frss-plus": [("conv kernel", (7, 4, 320)), ("conv kernel", (12, 320, 560)), ("conv kernel", (8, 560, 560)),
                        ("conv kernel", (7, 560, 560)), ("dense kernel", (28 * 560, 925)), ("dense bias", (925,)),
                        ("dense kernel", (925, CLASSES)), ("dense bias", (CLASSES,))],
    # danqfrss.py: W_conv1 l.166, W_conv2 l.180; BiRNN l.193 (BasicLSTMCell(320) forward and backward,
    # l.146/148); W_fc1 l.197: 2 x 320 x (fc1_param - 1) = 80 steps, because its second pooling (6) is
    # VALID (l.127-128): floor((494 - 13 + 1) / 6); b_fc1 l.202, W_fc4 l.212, b_fc4 l.216.
    "danq-frss": [("conv kernel", (13, 4, 320)), ("conv kernel", (13, 320, 320)),
                  ("lstm kernel", (640, 1280)), ("lstm bias", (1280,)),
                  ("lstm kernel", (640, 1280)), ("lstm bias", (1280,)),
                  ("dense kernel", (80 * 640, 925)), ("dense bias", (925,)),
                  ("dense kernel", (925, CLASSES)), ("dense bias", (CLASSES,))],
}

CONVOLUTIONS = (keras.layers.Conv1D, FRSSConv1D)


def trainable_weights(model):
    """(kind, shape) per trainable weight in build order, a Keras LSTM's kernel and recurrent
    kernel stacked into the one kernel of a TF1 LSTM cell."""
    described = []
    for layer in model.layers:
        kind = ("conv" if isinstance(layer, CONVOLUTIONS) else "lstm" if isinstance(layer, keras.layers.Bidirectional)
                else "dense" if isinstance(layer, keras.layers.Dense) else type(layer).__name__)
        for weight in layer.trainable_weights:
            shape = tuple(weight.shape)
            if weight.name == "recurrent_kernel":
                previous_kind, previous_shape = described.pop()
                assert previous_kind == "lstm kernel", f"{weight.path} does not follow an LSTM kernel"
                shape = (previous_shape[0] + shape[0], shape[1])
            described.append((f"{kind} {weight.name.replace('recurrent_', '')}", shape))
    return described


@pytest.fixture(scope="module", params=PAPER_MODELS)
def model(request):
    """One full-width model at a time (module scope groups the tests by model)."""
    yield build_model(request.param, n_classes=CLASSES, window=1000, width_scale=1.0)
    keras.backend.clear_session()


def test_every_paper_model_is_registered_and_transcribed():
    assert set(PAPER_MODELS) <= set(model_names())
    assert sorted(ORIGINAL) == sorted(PAPER_MODELS)


def test_trainable_weights_match_the_original(model):
    assert trainable_weights(model) == ORIGINAL[model.name]


def test_no_convolution_has_a_bias(model):
    convolutions = [layer for layer in model.layers if isinstance(layer, CONVOLUTIONS)]
    assert convolutions
    with_bias = [f"{layer.name}: {weight.path}" for layer in convolutions for weight in layer.weights
                 if weight.name == "bias"]
    assert not with_bias, f"{model.name}: convolutions with a bias (the original's have none): {with_bias}"
