"""Windows of a table read from the genome batch by batch, read ahead by threads, and predicted
in order (training, evaluation and prediction share them)."""

import math

import numpy as np

from .distribute import predict_on_replicas
from .genome import one_hot_windows, reverse_complement_one_hot
from .parallel import in_order
from .windows import SPLITS


def split_rows(table, split, limit, seed):
    """Rows of one split; at most `limit` of them (a seeded random subset, in table order)."""
    rows = np.flatnonzero(table.splits == split)
    if limit and len(rows) > limit:
        rows = np.sort(np.random.default_rng([seed, SPLITS.index(split)]).choice(rows, limit, replace=False))
    return rows


def window_batch(genome, table, rows):
    window = int(table.ends[rows[0]] - table.starts[rows[0]])
    x = one_hot_windows(genome, table.chroms[rows], table.starts[rows], window)
    return x, table.labels[rows].astype(np.float32)


def prefetched(batches, threads=1):
    """The items of `batches` in order, each read ahead by a pool of `threads` while earlier ones
    are being used (sequence reads and one-hot encoding release the GIL). On a GPU a step can
    take less time than reading one batch of windows from a bgzip FASTA: there, use several."""
    return in_order(batches.__getitem__, range(len(batches)), threads)


class _OrderedBatches:
    def __init__(self, genome, table, rows, batch_size):
        self.genome, self.table, self.rows, self.batch_size = genome, table, rows, batch_size

    def __len__(self):
        return math.ceil(len(self.rows) / self.batch_size)

    def __getitem__(self, index):
        return window_batch(self.genome, self.table, self.rows[index * self.batch_size:(index + 1) * self.batch_size])[0]


def predict_rows(model, genome, table, rows, batch_size, threads=1, strategy=None, rc_average=False):
    """Predictions (len(rows), classes) for the windows `rows` of `table`, in order; with
    rc_average, the mean of each window's and its reverse complement's; a model built under a
    distribution `strategy` predicts each batch split over its replicas."""
    batches = _OrderedBatches(genome, table, rows, batch_size)

    def predict(x):
        y = predict_on_replicas(strategy, model, x)
        if rc_average:
            y = (y + predict_on_replicas(strategy, model, np.ascontiguousarray(reverse_complement_one_hot(x)))) / 2
        return y

    return np.concatenate([predict(x) for x in prefetched(batches, threads)])
