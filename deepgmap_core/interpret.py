"""Looking inside a model: class saliency (the paper's "influential value" track).

The saliency of a base is d(class logit)/d(input) at that base, summed over the four
one-hot channels. Gradients come from the Keras backend in use (TensorFlow, PyTorch or JAX).
"""

import keras
import numpy as np
from keras import ops

from .errors import InputError
from .genome import ONE_HOT_ORDER, one_hot_windows


def class_logits(model):
    """A function x -> logits (before the output sigmoid) of a DeepGMAP model."""
    output = model.get_layer("predictions")
    features = keras.Model(model.input, output.input)
    return lambda x: ops.matmul(features(x), output.kernel) + output.bias


def gradient(function, x):
    """d(sum of function(x))/dx as numpy, for a function of a batch built from keras.ops."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        inputs = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            score = tf.reduce_sum(function(inputs))
        return tape.gradient(score, inputs).numpy()
    if backend == "torch":
        inputs = ops.convert_to_tensor(x).detach().requires_grad_(True)
        function(inputs).sum().backward()
        return inputs.grad.detach().cpu().numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(lambda inputs: function(inputs).sum())(ops.convert_to_tensor(x)))
    raise InputError(f"gradients are not implemented for the {backend} backend")


def input_gradients(model, x, class_index):
    """d(logit of class `class_index`)/d(x) for a batch x (n, window, 4), as numpy."""
    logits = class_logits(model)
    return gradient(lambda inputs: logits(inputs)[:, class_index], x)


def activation_objective(model, class_index=None, l2=5e-3):
    """The paper's objective for an input X: y_i / sum_{k != i} y_k - l2 |X|^2 for one class
    (y_i alone when the model has one class), or prod_i y_i - l2 |X|^2 for all classes."""
    def objective(x):
        y = model(x)
        penalty = l2 * ops.sum(ops.square(x), axis=(1, 2))
        if class_index is None:
            return ops.prod(y, axis=1) - penalty
        others = ops.sum(y, axis=1) - y[:, class_index]
        score = y[:, class_index] / others if y.shape[1] > 1 else y[:, class_index]
        return score - penalty
    return objective


def maximise_activation(model, window, class_index=None, steps=200, learning_rate=0.001, seed=0, record_every=10):
    """Optimise an input (1, window, 4) for the objective with Adam from X ~ N(0.02, 0.02) (the
    initialisation the original found critical). Returns (X, objective values every `record_every` steps)."""
    x = np.random.default_rng(seed).normal(0.02, 0.02, (1, window, 4)).astype(np.float32)
    objective = activation_objective(model, class_index)
    first, second = np.zeros_like(x), np.zeros_like(x)
    trace = []
    for step in range(1, steps + 1):
        grad = gradient(objective, x)  # ascent: follow the gradient
        first = 0.9 * first + 0.1 * grad
        second = 0.999 * second + 0.001 * grad ** 2
        x = x + learning_rate * (first / (1 - 0.9 ** step)) / (np.sqrt(second / (1 - 0.999 ** step)) + 1e-7)
        if step % record_every == 0 or step == steps:
            trace.append(float(ops.convert_to_numpy(objective(x))[0]))
    return x, trace


def input_to_sequence(x):
    """The sequence read from an optimised input (window, 4): the argmax base (A,G,C,T) per position."""
    return "".join(np.array(list(ONE_HOT_ORDER))[np.asarray(x).argmax(axis=-1)])


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


def connection_strengths(model):
    """Link strengths between consecutive layers, from the first-layer kernels to the classes
    (the paper's Fig. 3b): between convolutions, the sum of the weights from filter i of one layer
    into filter j of the next; from the last convolution to a class, the weights of the dense
    path (the product of the dense matrices) summed over positions. Returns (layer names, matrices)."""
    from .models.layers import FRSSConv1D

    convs = [layer for layer in model.layers if isinstance(layer, (keras.layers.Conv1D, FRSSConv1D))]
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    if not convs or not dense or any(isinstance(layer, keras.layers.Bidirectional) for layer in model.layers):
        raise InputError(f"model {model.name}: the connection graph needs convolutions followed by dense layers")
    kernels = [ops.convert_to_numpy(layer.kernel) for layer in convs]
    matrices = [kernel.sum(axis=0) for kernel in kernels[1:]]
    path = ops.convert_to_numpy(dense[0].kernel)
    for layer in dense[1:]:
        path = path @ ops.convert_to_numpy(layer.kernel)
    matrices.append(path.reshape(-1, kernels[-1].shape[2], path.shape[1]).sum(axis=0))
    return [layer.name for layer in convs] + ["classes"], matrices


def strongest_links(matrix, fraction=0.1, per_column=False):
    """(rows, columns) of the top `fraction` of links by absolute strength (at least one), over the
    whole matrix or, per_column, into each column (each class) separately."""
    if per_column:
        count = max(1, int(np.ceil(fraction * matrix.shape[0])))
        rows = np.argsort(-np.abs(matrix), axis=0)[:count]
        return rows.T.ravel(), np.repeat(np.arange(matrix.shape[1]), count)
    count = max(1, int(np.ceil(fraction * matrix.size)))
    return np.unravel_index(np.argsort(-np.abs(matrix), axis=None)[:count], matrix.shape)


def plot_connections(model, class_names, stream, image_format="png", kernel_labels=None, fraction=0.1):
    """Layered graph of the strongest `fraction` of links between consecutive layers, first-layer
    kernels labelled (e.g. with their best motif match)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, matrices = connection_strengths(model)
    sizes = [matrices[0].shape[0]] + [m.shape[1] for m in matrices]
    figure, axes = plt.subplots(figsize=(3 + 2.5 * len(sizes), 8))
    height = lambda n: np.linspace(0.02, 0.98, n) if n > 1 else np.array([0.5])  # noqa: E731
    largest = max(np.abs(m).max() for m in matrices) or 1
    used = [set() for _ in sizes]
    for column, matrix in enumerate(matrices):
        rows, cols = strongest_links(matrix, fraction, per_column=column == len(matrices) - 1)
        for i, j in zip(rows, cols):
            value = matrix[i, j]
            axes.plot([column, column + 1], [height(sizes[column])[i], height(sizes[column + 1])[j]],
                      color="#d62728" if value > 0 else "#1f77b4", alpha=min(1, 0.2 + abs(value) / largest),
                      linewidth=0.5 + 2 * abs(value) / largest)
            used[column].add(i)
            used[column + 1].add(j)
    for column, size in enumerate(sizes):
        shown = sorted(used[column])
        axes.scatter([column] * len(shown), height(size)[shown], s=12, color="black", zorder=3)
    for i in sorted(used[0]):
        label = (kernel_labels or {}).get(i, f"kernel {i + 1}")
        axes.text(-0.05, height(sizes[0])[i], label, ha="right", va="center", fontsize=6)
    for j, name in enumerate(class_names):
        axes.text(len(sizes) - 0.95, height(sizes[-1])[j], name, ha="left", va="center", fontsize=9)
    axes.set_xticks(range(len(sizes)), names)
    axes.set_yticks([])
    axes.set_xlim(-1.2, len(sizes) - 0.2)
    axes.set_title(f"Strongest {100 * fraction:.0f}% of links per layer and into each class "
                   f"(red positive, blue negative)")
    figure.tight_layout()
    figure.savefig(stream, format=image_format, dpi=110)
    plt.close(figure)
