"""Looking inside a model: class saliency (the paper's "influential value" track).

The saliency of a base is what its observed nucleotide adds to a class logit beyond the mean
of the four nucleotides at that position, from one of two per-nucleotide values v[pos, b]:
- gradient: v = d(class logit)/d(input), the corrected gradient x input of Majdandzic et al.
  (2023, doi:10.1186/s13059-023-02956-3). The original summed the gradient over the four
  channels, which keeps exactly the part of it (the same value added to all four) that no
  base change can produce, since every substitution moves along a difference of two channels;
- ism: v = the class logit with nucleotide b at pos (in-silico saturation mutagenesis), the
  exact reference the gradient approximates to first order.
Both give v[pos, observed] - mean_b v[pos, b], 0 at N (no observed nucleotide), and agree
exactly for a model linear in its input. Gradients come from the Keras backend in use
(TensorFlow, PyTorch or JAX).
"""

import keras
import numpy as np
from keras import ops

from .errors import InputError
from .genome import ONE_HOT_ORDER, one_hot_windows

SALIENCY_METHODS = ("gradient", "ism")


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


def compiled_function(function):
    """`function` (of a batch, built from keras.ops) for calling batch after batch: on TensorFlow
    compiled once (a graph, 2-3x faster than running it eagerly per batch), returning numpy."""
    if keras.backend.backend() != "tensorflow":
        return lambda x: ops.convert_to_numpy(function(x))
    import tensorflow as tf

    compiled = tf.function(function, reduce_retracing=True)
    return lambda x: compiled(tf.convert_to_tensor(x)).numpy()


def gradient_function(function):
    """x -> d(sum of function(x))/dx as numpy, for calling batch after batch (compiled_function)."""
    if keras.backend.backend() != "tensorflow":
        return lambda x: gradient(function, x)
    import tensorflow as tf

    def tape_gradient(inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            score = tf.reduce_sum(function(inputs))
        return tape.gradient(score, inputs)

    return compiled_function(tape_gradient)


def input_gradients(model, x, class_index):
    """d(logit of class `class_index`)/d(x) for a batch x (n, window, 4), as numpy."""
    logits = class_logits(model)
    return gradient(lambda inputs: logits(inputs)[:, class_index], x)


def observed_base_contribution(per_base, x):
    """v[..., observed base] - mean over the four bases of v, per position, for per-nucleotide
    values v (n, window, 4) or (n, window, 4, classes) of one-hot windows x (n, window, 4); 0 at N.
    Only differences between nucleotides are reachable by a base change: the mean is not."""
    centred = per_base - per_base.mean(axis=2, keepdims=True)
    return np.einsum("nwb...,nwb->nw...", centred, x)


def gradient_saliency(model, x, n_classes):
    """Corrected gradient x input (n, window, classes) of one-hot windows x (n, window, 4)."""
    return np.stack([observed_base_contribution(input_gradients(model, x, class_index), x)
                     for class_index in range(n_classes)], axis=-1)


def mutant_logits(model, x, batch_size=256, logits=None):
    """Class logits (n, window, 4, classes) of every single-base variant of the one-hot windows x
    (n, window, 4): [i, p, b] is the logit of window i with nucleotide b at position p. At the
    observed base that is window i itself; at N all four nucleotides are substitutions. The
    mutants (3 per base, 4 per N) are built batch_size at a time, many positions per batch.
    `logits`: the function of x to use (default: class_logits(model))."""
    logits = logits or class_logits(model)
    own = np.concatenate([ops.convert_to_numpy(logits(x[lo:lo + batch_size])) for lo in range(0, len(x), batch_size)])
    result = np.broadcast_to(own[:, None, None, :], (*x.shape, own.shape[1])).copy()
    windows, positions, bases = np.nonzero(x == 0)
    for lo in range(0, len(windows), batch_size):
        window, position, base = (part[lo:lo + batch_size] for part in (windows, positions, bases))
        mutants = x[window]  # fancy indexing: a copy per mutant
        rows = np.arange(len(window))
        mutants[rows, position] = 0
        mutants[rows, position, base] = 1
        result[window, position, base] = ops.convert_to_numpy(logits(mutants))
    return result


def ism_saliency(model, x, batch_size=256):
    """In-silico mutagenesis saliency (n, window, classes) of one-hot windows x (n, window, 4):
    logit(x) - the mean over the four nucleotides of the logit with that nucleotide at the
    position, i.e. -3/4 x the mean effect of the three substitutions there (0 at N)."""
    return observed_base_contribution(mutant_logits(model, x, batch_size), x)


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


def region_saliency(model, genome, chrom, start, end, window, n_classes, method="gradient", batch_size=64,
                    progress=None):
    """Per-base saliency (end - start, classes) over one region by `method` (gradient or ism, see
    the module's docstring); where windows overlap, the later window's value is kept. `progress`
    (a ProgressBar) is advanced by the number of windows done."""
    if method not in SALIENCY_METHODS:
        raise InputError(f"saliency method must be one of {', '.join(SALIENCY_METHODS)}, got {method!r}")
    if window > genome.lengths[chrom]:
        raise InputError(f"{chrom} is shorter than the model's {window} bp window")
    starts = region_windows(start, end, window, genome.lengths[chrom])
    # ISM scores ~3 mutants per base: a few windows at a time keeps the progress moving.
    windows_per_chunk = batch_size if method == "gradient" else max(1, batch_size // (3 * window))
    chunks = []
    for lo in range(0, len(starts), windows_per_chunk):
        chunk_starts = starts[lo:lo + windows_per_chunk]
        x = one_hot_windows(genome, [chrom] * len(chunk_starts), chunk_starts, window)
        chunks.append(gradient_saliency(model, x, n_classes) if method == "gradient"
                      else ism_saliency(model, x, batch_size))
        if progress is not None:
            progress.update(len(chunk_starts))
    per_window = np.concatenate(chunks)
    # The windows are sorted and leave no gap: the last one starting at or before a base covers it.
    positions = np.arange(start, end)
    owner = np.searchsorted(starts, positions, side="right") - 1
    return per_window[owner, positions - starts[owner]].astype(np.float32)


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
    from .reports import figure_bytes, pyplot

    names, matrices = connection_strengths(model)
    sizes = [matrices[0].shape[0]] + [m.shape[1] for m in matrices]
    figure, axes = pyplot().subplots(figsize=(3 + 2.5 * len(sizes), 8))
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
    stream.write(figure_bytes(figure, image_format, dpi=110))
