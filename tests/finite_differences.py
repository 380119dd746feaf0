"""An independent check of saliency: the derivative of a class logit along each of the four
channels of a base, by central finite differences."""

import keras
import numpy as np


def channel_derivatives_by_finite_differences(logits, x, positions, class_index=0, eps=1e-2):
    """d(logit)/d(x[p, c]) (len(positions), 4) for the channels c (A, G, C, T) of the bases p of one
    window x (1, window, 4)."""
    positions = np.atleast_1d(positions)
    rows, channels = np.arange(len(positions))[:, None], np.arange(4)[None, :]
    bumped = np.repeat(x, 8 * len(positions), axis=0).reshape(len(positions), 4, 2, *x.shape[1:])
    bumped[rows, channels, 0, positions[:, None], channels] += eps
    bumped[rows, channels, 1, positions[:, None], channels] -= eps
    bumped = bumped.reshape(-1, *x.shape[1:])
    scores = np.concatenate([keras.ops.convert_to_numpy(logits(bumped[lo:lo + 1024]))[:, class_index]
                             for lo in range(0, len(bumped), 1024)]).astype(np.float64).reshape(-1, 4, 2)
    return (scores[..., 0] - scores[..., 1]) / (2 * eps)


def saliency_by_finite_differences(logits, x, positions, class_index=0, eps=1e-2):
    """The corrected gradient x input at bases `positions` (one or an array) of one window x
    (1, window, 4): the derivative at the observed channel minus the mean over the four (0 at N)."""
    derivatives = channel_derivatives_by_finite_differences(logits, x, positions, class_index, eps)
    observed = x[0, np.atleast_1d(positions)]
    values = ((derivatives - derivatives.mean(axis=1, keepdims=True)) * observed).sum(axis=1)
    return values if np.ndim(positions) else float(values[0])
