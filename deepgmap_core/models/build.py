"""Keras models from the specifications in deepgmap_core.models."""

import keras

from ..errors import InputError
from . import L1_PREDICTION_WEIGHT, L2_WEIGHT, architecture
from .layers import FRSSConv1D

INITIALIZATIONS = ("paper", "he")


def scaled(count, width_scale):
    return max(1, round(count * width_scale))


def initializers(spec, initialization):
    """Keyword arguments of (every kernel, the dense layers' biases).

    paper: the original's truncated normal (sd 0.005 or 0.001) and dense biases 0.1. With
    kernels that small every activation starts almost constant across inputs, and the
    gradient shrinks ~10x per layer: such models sit at a composition plateau for thousands
    of updates. he: He-normal kernels (variance kept through ReLU layers) and zero biases.
    """
    if initialization == "paper":
        return ({"kernel_initializer": keras.initializers.TruncatedNormal(stddev=spec.init_sd)},
                {"bias_initializer": keras.initializers.Constant(0.1)})
    if initialization == "he":
        return {"kernel_initializer": keras.initializers.HeNormal()}, {"bias_initializer": "zeros"}
    raise InputError(f"unknown initialisation {initialization!r}; choose from {', '.join(INITIALIZATIONS)}")


def build_model(name, n_classes, window=1000, width_scale=1.0, initialization="paper", output_bias=None):
    """A compiled-ready (not compiled) Keras model: one-hot (window, 4) in, n_classes probabilities out.
    `output_bias` (per class logits, e.g. of the train prevalence) starts the output at the base rate."""
    spec = architecture(name)
    if not width_scale > 0:
        raise InputError(f"--width-scale must be > 0, got {width_scale}")
    kernel_init, bias_init = initializers(spec, initialization)
    kernel_reg = {"kernel_regularizer": keras.regularizers.L2(L2_WEIGHT)} if spec.regularized else {}
    dense_reg = {**kernel_reg, "bias_regularizer": keras.regularizers.L2(L2_WEIGHT)} if spec.regularized else {}
    # A global pool makes the network read windows of any length (it is trained on `window`).
    inputs = keras.Input((None if spec.global_pool else window, 4), name="one_hot")
    x = inputs
    for i, conv in enumerate(spec.convs, 1):
        filters = scaled(conv.filters, width_scale)
        if conv.frss:
            stage = "second" if isinstance(x, list) else "first"  # the first FRSS layer makes two streams
            x = FRSSConv1D(filters, conv.width, conv.pool, stage, use_bias=False, dropout=conv.dropout,
                           batch_norm=spec.batch_norm, pool_padding=conv.pool_padding, name=f"frss{i}",
                           **kernel_init, **kernel_reg)(x)
            continue
        x = keras.layers.Conv1D(filters, conv.width, use_bias=False, activation=None if spec.batch_norm else "relu",
                                name=f"conv{i}", **kernel_init, **kernel_reg)(x)
        if spec.batch_norm:
            x = keras.layers.BatchNormalization(name=f"batch_norm{i}")(x)
            x = keras.layers.Activation("relu", name=f"relu{i}")(x)
        if conv.dropout and not conv.dropout_after_pool:  # the original drops after the ReLU, before the pool
            x = keras.layers.Dropout(conv.dropout, name=f"dropout{i}")(x)
        if conv.pool > 1:
            x = keras.layers.MaxPooling1D(conv.pool, padding=conv.pool_padding, name=f"pool{i}")(x)
        if conv.dropout and conv.dropout_after_pool:
            x = keras.layers.Dropout(conv.dropout, name=f"dropout{i}")(x)
    if spec.lstm:
        x = keras.layers.Bidirectional(keras.layers.LSTM(scaled(spec.lstm, width_scale), return_sequences=True,
                                                         dropout=spec.lstm_input_dropout), name="bilstm")(x)
        if spec.lstm_output_dropout:
            x = keras.layers.Dropout(spec.lstm_output_dropout, name="bilstm_dropout")(x)
    if spec.global_pool:
        x = keras.layers.GlobalMaxPooling1D(name="global_max_pool")(x)
    else:
        x = keras.layers.Flatten(name="flatten")(x)
    for i, (units, dropout) in enumerate(spec.dense, 1):
        x = keras.layers.Dense(scaled(units, width_scale), activation="relu", name=f"dense{i}", **kernel_init,
                               **bias_init, **dense_reg)(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dense_dropout{i}")(x)
    activity = {"activity_regularizer": keras.regularizers.L1(L1_PREDICTION_WEIGHT)} if spec.regularized else {}
    output_init = {"bias_initializer": keras.initializers.Constant(output_bias)} if output_bias is not None \
        else bias_init
    # He-normal suits layers followed by a ReLU; the sigmoid output starts with Glorot's smaller
    # weights, so the first losses are near the base rate's, not in the thousands.
    output_kernel = kernel_init if initialization == "paper" else {"kernel_initializer": "glorot_uniform"}
    outputs = keras.layers.Dense(n_classes, activation="sigmoid", name="predictions", **output_kernel,
                                 **output_init, **dense_reg, **activity)(x)
    return keras.Model(inputs, outputs, name=name)
