"""FRSS: forward- and reverse-sequence scan convolutions (Onimaru et al.).

The first two convolutions see both strands. Layer 1 scans the one-hot sequence with a
kernel W1 and with its rotated copy (W1 reversed on the position and nucleotide axes: with
the A,G,C,T order that is the reverse complement), giving two streams. Layer 2 scans the
forward stream with W2 and the reverse stream with W2 reversed on the position axis only,
and sums the two after the ReLU. The rotated kernels are views of the same variables, so
the output of layer 2 is reverse-complement equivariant:
h2(revcomp(x)) == reverse_positions(h2(x)).
Written with keras.ops only, so it runs on the TensorFlow, JAX and PyTorch backends.
"""

import keras
from keras import ops

STAGES = ("first", "second")


@keras.saving.register_keras_serializable(package="deepgmap")
class FRSSConv1D(keras.layers.Layer):
    """One layer of an FRSS pair: VALID convolution, ReLU, max-pool (SAME).

    stage="first": input (batch, length, 4) -> [forward, reverse] streams.
    stage="second": input [forward, reverse] -> one tensor, the sum of the two ReLU'd scans.
    """

    def __init__(self, filters, kernel_size, pool_size, stage, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
        self.filters, self.kernel_size, self.pool_size, self.stage = filters, kernel_size, pool_size, stage
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape):
        channels = input_shape[-1] if self.stage == "first" else input_shape[0][-1]
        self.kernel = self.add_weight(name="kernel", shape=(self.kernel_size, channels, self.filters),
                                      initializer=self.kernel_initializer, regularizer=self.kernel_regularizer)
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer=self.bias_initializer)

    def _scan(self, inputs, kernel):
        return ops.relu(ops.conv(inputs, kernel, padding="valid") + self.bias)

    def _pool(self, inputs):
        if self.pool_size <= 1:
            return inputs
        return ops.max_pool(inputs, self.pool_size, strides=self.pool_size, padding="same")

    def scan(self, inputs):
        """The layer before its pooling: two streams (first stage) or their sum (second stage).
        Valid on inputs of any length, so prediction can run it over a whole chromosome chunk."""
        if self.stage == "first":
            rotated = ops.flip(ops.flip(self.kernel, axis=0), axis=1)
            return [self._scan(inputs, self.kernel), self._scan(inputs, rotated)]
        forward, reverse = inputs
        return self._scan(forward, self.kernel) + self._scan(reverse, ops.flip(self.kernel, axis=0))

    def call(self, inputs):
        scanned = self.scan(inputs)
        return [self._pool(s) for s in scanned] if self.stage == "first" else self._pool(scanned)

    def _output_length(self, length):
        length = None if length is None else length - self.kernel_size + 1
        if length is None or self.pool_size <= 1:
            return length
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
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer)}
