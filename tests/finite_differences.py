"""An independent check of saliency: the derivative of a class logit along all four channels of
one base, by central finite differences."""

import keras
import numpy as np


def saliency_by_finite_differences(logits, x, position, class_index=0, eps=1e-2):
    """d(logit)/d(x[position, c]) summed over the channels c, for one window x (1, window, 4)."""
    bumped = np.repeat(x, 8, axis=0)
    for channel in range(4):
        bumped[2 * channel, position, channel] += eps
        bumped[2 * channel + 1, position, channel] -= eps
    scores = keras.ops.convert_to_numpy(logits(bumped))[:, class_index].astype(np.float64)
    return sum((scores[2 * c] - scores[2 * c + 1]) / (2 * eps) for c in range(4))
