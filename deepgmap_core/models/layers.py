"""FRSS: forward- and reverse-sequence scan convolutions (Onimaru et al.).

The first two convolutions see both strands. Layer 1 scans the one-hot sequence with a
kernel W1 and with its rotated copy (W1 reversed on the position and nucleotide axes: with
the A,G,C,T order that is the reverse complement), giving two streams. Layer 2 scans the
forward stream with W2 and the reverse stream with W2 reversed on the position axis only,
and sums the two after the ReLU. The rotated kernels are views of the same variables, so
the output of layer 2 is reverse-complement equivariant:
h2(revcomp(x)) == reverse_positions(h2(x)).
The original's FRSS convolutions have no bias (`use_bias=False` for the paper's models; True
is the default only so that model files written before that fix still load). Dropout sits
after the ReLU, before the pooling, as in the original. With `batch_norm`, both streams are
normalised together (one set of statistics, so the equivariance holds) before the ReLU.
Written with keras.ops only, so it runs on the TensorFlow, JAX and PyTorch backends.
"""

import keras
from keras import ops

STAGES = ("first", "second")


@keras.saving.register_keras_serializable(package="deepgmap")
class FRSSConv1D(keras.layers.Layer):
    """One layer of an FRSS pair: VALID convolution, [batch norm,] ReLU, [dropout,] max-pool (SAME
    unless pool_padding="valid").

    stage="first": input (batch, length, 4) -> [forward, reverse] streams.
    stage="second": input [forward, reverse] -> one tensor, the sum of the two ReLU'd scans.
    """

    def __init__(self, filters, kernel_size, pool_size, stage, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, use_bias=True, dropout=0.0, batch_norm=False,
                 pool_padding="same", **kwargs):
        super().__init__(**kwargs)
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
        self.filters, self.kernel_size, self.pool_size, self.stage = filters, kernel_size, pool_size, stage
        self.use_bias, self.dropout, self.batch_norm = use_bias, dropout, batch_norm
        self.pool_padding = pool_padding
        self.norm = keras.layers.BatchNormalization(name="batch_norm") if batch_norm else None
        self.drop = keras.layers.Dropout(dropout, name="dropout") if dropout else None
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape):
        channels = input_shape[-1] if self.stage == "first" else input_shape[0][-1]
        self.kernel = self.add_weight(name="kernel", shape=(self.kernel_size, channels, self.filters),
                                      initializer=self.kernel_initializer, regularizer=self.kernel_regularizer)
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer=self.bias_initializer) \
            if self.use_bias else None
        if self.norm is not None:
            self.norm.build((None, None, self.filters))

    def _convolve(self, inputs, kernel):
        scanned = ops.conv(inputs, kernel, padding="valid")
        return scanned if self.bias is None else scanned + self.bias

    def _activate(self, streams, training):
        """ReLU of each stream, after one batch norm over both (concatenated on the batch axis)."""
        if self.norm is not None:
            streams = ops.split(self.norm(ops.concatenate(streams, axis=0), training=training), 2, axis=0)
        return [ops.relu(s) for s in streams]

    def _pool(self, inputs):
        if self.pool_size <= 1:
            return inputs
        return ops.max_pool(inputs, self.pool_size, strides=self.pool_size, padding=self.pool_padding)

    def scan(self, inputs, training=False):
        """The layer before its dropout and pooling: two streams (first stage) or their sum (second
        stage). Valid on inputs of any length, so prediction can run it over a whole chromosome chunk."""
        if self.stage == "first":
            rotated = ops.flip(ops.flip(self.kernel, axis=0), axis=1)
            return self._activate([self._convolve(inputs, self.kernel), self._convolve(inputs, rotated)], training)
        forward, reverse = inputs
        scans = [self._convolve(forward, self.kernel), self._convolve(reverse, ops.flip(self.kernel, axis=0))]
        first, second = self._activate(scans, training)
        return first + second

    def _drop(self, inputs, training):
        return inputs if self.drop is None else self.drop(inputs, training=training)

    def call(self, inputs, training=None):
        scanned = self.scan(inputs, training)
        if self.stage == "first":
            return [self._pool(self._drop(s, training)) for s in scanned]
        return self._pool(self._drop(scanned, training))

    def _output_length(self, length):
        length = None if length is None else length - self.kernel_size + 1
        if length is None or self.pool_size <= 1:
            return length
        if self.pool_padding == "valid":
            return length // self.pool_size
        return -(-length // self.pool_size)

    def compute_output_shape(self, input_shape):
        shape = input_shape if self.stage == "first" else input_shape[0]
        out = (shape[0], self._output_length(shape[1]), self.filters)
        return [out, out] if self.stage == "first" else out

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "pool_size": self.pool_size, "stage": self.stage,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
                "use_bias": self.use_bias, "dropout": self.dropout, "batch_norm": self.batch_norm,
                "pool_padding": self.pool_padding}
