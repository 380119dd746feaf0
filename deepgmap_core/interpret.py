"""Looking inside a model: class saliency (the paper's "influential value" track).

The saliency of a base is d(class logit)/d(input) at that base, summed over the four
one-hot channels. Gradients come from the Keras backend in use (TensorFlow, PyTorch or JAX).
"""

import keras
import numpy as np
from keras import ops

from .errors import InputError
from .genome import one_hot_windows


def class_logits(model):
    """A function x -> logits (before the output sigmoid) of a DeepGMAP model."""
    output = model.get_layer("predictions")
    features = keras.Model(model.input, output.input)
    return lambda x: ops.matmul(features(x), output.kernel) + output.bias


def input_gradients(model, x, class_index):
    """d(logit of class `class_index`)/d(x) for a batch x (n, window, 4), as numpy."""
    logits = class_logits(model)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        inputs = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            score = tf.reduce_sum(logits(inputs)[:, class_index])
        return tape.gradient(score, inputs).numpy()
    if backend == "torch":
        import torch

        inputs = ops.convert_to_tensor(x).detach().requires_grad_(True)
        logits(inputs)[:, class_index].sum().backward()
        return inputs.grad.detach().cpu().numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(lambda inputs: logits(inputs)[:, class_index].sum())(ops.convert_to_tensor(x)))
    raise InputError(f"saliency is not implemented for the {backend} backend")


def region_windows(start, end, window, chrom_length):
    """Window starts tiling [start, end): back to back, the last one ending at `end` (or, for a
    region shorter than a window, one window centred on it), all inside the chromosome."""
    if end - start >= window:
        starts = np.arange(start, end - window + 1, window)
        if starts[-1] + window < end:
            starts = np.r_[starts, end - window]
    else:
        starts = np.array([min(max((start + end - window) // 2, 0), chrom_length - window)])
    return starts.astype(np.int64)


def region_saliency(model, genome, chrom, start, end, window, n_classes, batch_size=64):
    """Per-base saliency (end - start, classes) over one region; where windows overlap, the
    later window's value is kept."""
    if window > genome.lengths[chrom]:
        raise InputError(f"{chrom} is shorter than the model's {window} bp window")
    starts = region_windows(start, end, window, genome.lengths[chrom])
    result = np.zeros((end - start, n_classes), dtype=np.float32)
    for lo in range(0, len(starts), batch_size):
        batch_starts = starts[lo:lo + batch_size]
        x = one_hot_windows(genome, [chrom] * len(batch_starts), batch_starts, window)
        for class_index in range(n_classes):
            per_base = input_gradients(model, x, class_index).sum(axis=2)
            for window_start, values in zip(batch_starts, per_base):
                first, last = max(window_start, start), min(window_start + window, end)
                result[first - start:last - start, class_index] = values[first - window_start:last - window_start]
    return result
