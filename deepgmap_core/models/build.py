"""Keras models from the specifications in deepgmap_core.models."""

import keras

from ..errors import InputError
from . import L1_PREDICTION_WEIGHT, L2_WEIGHT, architecture
from .layers import FRSSConv1D


def scaled(count, width_scale):
    return max(1, round(count * width_scale))


def build_model(name, n_classes, window=1000, width_scale=1.0):
    """A compiled-ready (not compiled) Keras model: one-hot (window, 4) in, n_classes probabilities out."""
    spec = architecture(name)
    if width_scale <= 0:
        raise InputError(f"--width-scale must be > 0, got {width_scale}")
    init = {"kernel_initializer": keras.initializers.TruncatedNormal(stddev=spec.init_sd),
            "bias_initializer": keras.initializers.Constant(0.1)}
    kernel_reg = {"kernel_regularizer": keras.regularizers.L2(L2_WEIGHT)} if spec.regularized else {}
    inputs = keras.Input((window, 4), name="one_hot")
    x = inputs
    for i, conv in enumerate(spec.convs, 1):
        filters = scaled(conv.filters, width_scale)
        if conv.frss:
            stage = "second" if isinstance(x, list) else "first"  # the first FRSS layer makes two streams
            x = FRSSConv1D(filters, conv.width, conv.pool, stage, name=f"frss{i}", **init, **kernel_reg)(x)
        else:
            x = keras.layers.Conv1D(filters, conv.width, activation="relu", name=f"conv{i}", **init, **kernel_reg)(x)
            if conv.pool > 1:
                x = keras.layers.MaxPooling1D(conv.pool, padding="same", name=f"pool{i}")(x)
        if conv.dropout:
            x = keras.layers.Dropout(conv.dropout, name=f"dropout{i}")(x)
    if spec.lstm:
        lstm_reg = {"kernel_regularizer": keras.regularizers.L2(L2_WEIGHT),
                    "recurrent_regularizer": keras.regularizers.L2(L2_WEIGHT)} if spec.regularized else {}
        x = keras.layers.Bidirectional(keras.layers.LSTM(scaled(spec.lstm, width_scale), return_sequences=True,
                                                         **lstm_reg), name="bilstm")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for i, (units, dropout) in enumerate(spec.dense, 1):
        x = keras.layers.Dense(scaled(units, width_scale), activation="relu", name=f"dense{i}", **init, **kernel_reg)(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dense_dropout{i}")(x)
    activity = {"activity_regularizer": keras.regularizers.L1(L1_PREDICTION_WEIGHT)} if spec.regularized else {}
    outputs = keras.layers.Dense(n_classes, activation="sigmoid", name="predictions", **init, **kernel_reg,
                                 **activity)(x)
    return keras.Model(inputs, outputs, name=name)
