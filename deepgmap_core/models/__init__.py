"""The DeepGMAP paper's eight models, registered by name.

Hyper-parameters follow the original (see the reference table in the README): VALID
convolutions with stride 1, no bias and ReLU, dropout after the ReLU and before max-pooling
(SAME; VALID for DanQ-FRSS's second pool), ReLU dense layers with biases, one sigmoid unit
per class; weights truncated-normal (sd 0.005 for conv4, conv3/conv4-FRSS and conv4-FRSS+,
0.001 for DeepSEA, Basset, DanQ and DanQ-FRSS), dense biases 0.1. DanQ drops after its pool
and on the LSTM inputs (TF1's DropoutWrapper input_keep_prob), DanQ-FRSS on the BiLSTM output.
Models marked "+reg" add 5e-7 * sum(W^2) over the convolution and dense kernels and the dense
biases (not the LSTM's) and 1e-8 * L1 of the predictions (Keras divides activity terms by the
batch size; the original summed over the batch) to the loss. Dropout rates are 1 - the
original's keep probabilities.
`width_scale` multiplies every filter, LSTM and dense count.

Additions, never silent changes to the paper's eight, carry their own names. conv3-frss-bn
(the default) keeps the FRSS pair and adds what made it learn fastest on a CPU
(benchmarks/time_to_accuracy.py): batch normalisation before every ReLU, a first FRSS kernel as
wide as a long motif (19 bp, CTCF's core), no dropout and no loss terms, and a global max-pool
over positions in place of the Flatten, so a window's features do not depend on where in it a
motif lies (the paper's Flatten into 925 units learns every position separately).

This module holds the specifications only (importing it does not import Keras); build.py
turns them into Keras models.
"""

from dataclasses import dataclass

from ..errors import InputError


@dataclass(frozen=True)
class Conv:
    filters: int
    width: int
    pool: int = 1
    dropout: float = 0.0
    frss: bool = False
    pool_padding: str = "same"
    dropout_after_pool: bool = False  # DanQ's: the original drops after its pool


@dataclass(frozen=True)
class Architecture:
    convs: tuple
    dense: tuple             # (units, dropout) per hidden dense layer
    init_sd: float
    regularized: bool
    lstm: int = 0            # units per direction of a bidirectional LSTM after the convolutions
    lstm_input_dropout: float = 0.0   # DanQ: dropout on each direction's inputs
    lstm_output_dropout: float = 0.0  # DanQ-FRSS: dropout on the BiLSTM's output
    batch_norm: bool = False  # before every convolution's ReLU
    global_pool: bool = False  # global max-pool over positions instead of Flatten


# conv3-FRSS, conv4-FRSS+ and DanQ-FRSS take conv4's dropout (keep 0.8 after the second and
# later convolutions, 0.5 on the dense layer), which the reference leaves implicit for them.
ARCHITECTURES = {
    "deepsea": Architecture((Conv(320, 8, 4), Conv(480, 8, 4), Conv(960, 8, 1, 0.2)), ((925, 0.5),), 0.001, True),
    "basset": Architecture((Conv(300, 19, 3), Conv(200, 11, 4, 0.2), Conv(200, 7, 4, 0.2)),
                           ((1000, 0.5), (1000, 0.5)), 0.001, False),
    "danq": Architecture((Conv(320, 26, 13, 0.2, dropout_after_pool=True),), ((925, 0.0),), 0.001, False, lstm=320,
                         lstm_input_dropout=0.2),
    "conv4": Architecture((Conv(320, 9, 2), Conv(480, 9, 2, 0.2), Conv(480, 7, 2, 0.2), Conv(480, 8, 4, 0.2)),
                          ((925, 0.5),), 0.005, True),
    "conv3-frss": Architecture((Conv(320, 9, 2, frss=True), Conv(480, 9, 2, 0.2, frss=True), Conv(480, 7, 2, 0.2)),
                               ((925, 0.5),), 0.005, True),
    "conv4-frss": Architecture((Conv(320, 9, 2, frss=True), Conv(480, 9, 2, 0.2, frss=True), Conv(480, 7, 2, 0.2),
                                Conv(480, 8, 4, 0.2)), ((925, 0.5),), 0.005, True),
    "conv4-frss-plus": Architecture((Conv(320, 7, 2, frss=True), Conv(560, 12, 2, 0.2, frss=True),
                                     Conv(560, 8, 2, 0.2), Conv(560, 7, 4, 0.2)), ((925, 0.5),), 0.005, True),
    "danq-frss": Architecture((Conv(320, 13, 2, frss=True), Conv(320, 13, 6, 0.2, frss=True, pool_padding="valid")),
                              ((925, 0.5),), 0.001, True, lstm=320, lstm_output_dropout=0.2),
    "conv3-frss-bn": Architecture((Conv(256, 19, 3, frss=True), Conv(256, 11, 4, frss=True), Conv(256, 7)),
                                  ((256, 0.0),), 0.005, False, batch_norm=True, global_pool=True),
}
PAPER_MODELS = ("deepsea", "basset", "danq", "conv4", "conv3-frss", "conv4-frss", "conv4-frss-plus", "danq-frss")
DEFAULT_MODEL = "conv3-frss-bn"
L2_WEIGHT = 5e-7
L1_PREDICTION_WEIGHT = 1e-8


def model_names():
    return list(ARCHITECTURES)


def architecture(name):
    if name not in ARCHITECTURES:
        raise InputError(f"unknown model {name!r}; the models are: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]


