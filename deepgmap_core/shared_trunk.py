"""Prediction with the convolutions shared across overlapping windows.

Windows every 300 bp overlap by 70%: a per-window model computes each convolution 3.3 times.
VALID convolutions over a whole stretch of chromosome give exactly the values every window
inside it would compute; pooling makes a window's grid depend on its start modulo the pool
size, so each pooling layer splits a stream into one stream per phase that the windows need.
Each window's features are then sliced out of its stream and go through the dense head.
This needs a trunk of VALID stride-1 convolutions and non-overlapping pools whose lengths
divide evenly within a window (true of the conv and FRSS models); other models (the LSTM
ones) are predicted window by window.
"""

import keras
import numpy as np
from keras import ops

from .models.layers import FRSSConv1D


def trunk_plan(model):
    """(steps, head layers, feature length) for shared prediction, or (None, reason)."""
    steps, head, length, flattened = [], [], model.input_shape[1], False
    if length is None:
        return None, "it reads windows of any length (a global pool instead of a Flatten)"
    for layer in model.layers:
        if isinstance(layer, (keras.layers.InputLayer, keras.layers.Dropout)):
            continue  # dropout is the identity at inference
        if flattened:
            head.append(layer)
            continue
        if isinstance(layer, keras.layers.Flatten):
            flattened = True
            continue
        if isinstance(layer, FRSSConv1D):
            steps.append(("scan", layer))
            length -= layer.kernel_size - 1
            pool = layer.pool_size
        elif (isinstance(layer, keras.layers.Conv1D) and tuple(layer.strides) == (1,)
              and layer.padding == "valid" and tuple(layer.dilation_rate) == (1,)):
            steps.append(("conv", layer))
            length -= layer.kernel_size[0] - 1
            pool = 1
        elif isinstance(layer, keras.layers.MaxPooling1D) and tuple(layer.strides) == tuple(layer.pool_size):
            pool = layer.pool_size[0]
        else:
            return None, f"its layer {layer.name} ({type(layer).__name__}) cannot be shared across windows"
        if pool > 1:
            if length % pool:
                return None, f"a window's length ({length}) at layer {layer.name} is not a multiple of its pool ({pool})"
            steps.append(("pool", pool))
            length //= pool
    if not flattened:
        return None, "it has no Flatten layer between its convolutions and its dense layers"
    return (steps, head, length), None


def _pool(tensor, phase, size):
    if isinstance(tensor, list):
        return [_pool(t, phase, size) for t in tensor]
    usable = (tensor.shape[1] - phase) // size * size
    return ops.max_pool(tensor[:, phase:phase + usable], size, strides=size, padding="valid")


def trunk_features(plan, x, offsets):
    """Features (windows, length x channels) of the windows starting at `offsets` inside the
    one-hot stretch x (1, length, 4), each convolution computed once for the whole stretch."""
    steps, _, length = plan
    # Streams: (tensor, windows it serves, each window's first index in it).
    streams = [(x, np.arange(len(offsets)), np.asarray(offsets))]
    for kind, argument in steps:
        advanced = []
        for tensor, windows, starts in streams:
            if kind == "scan":
                advanced.append((argument.scan(tensor), windows, starts))
            elif kind == "conv":
                advanced.append((argument(tensor), windows, starts))
            else:
                for phase in np.unique(starts % argument):
                    chosen = starts % argument == phase
                    advanced.append((_pool(tensor, int(phase), argument), windows[chosen],
                                     (starts[chosen] - phase) // argument))
        streams = advanced
    features = None
    for tensor, windows, starts in streams:
        values = ops.convert_to_numpy(tensor)[0]
        if features is None:
            features = np.empty((len(offsets), length, values.shape[1]), dtype=values.dtype)
        features[windows] = values[starts[:, None] + np.arange(length)]
    return features.reshape(len(offsets), -1)


def head_predictions(plan, features):
    x = features
    for layer in plan[1]:
        x = layer(x)
    return ops.convert_to_numpy(x)
