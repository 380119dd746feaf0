"""The Keras backend in use: where it computes, package versions for provenance, determinism."""

import platform

import keras
import numpy as np

from . import __version__


def accelerator():
    """Where the backend computes: 'GPU (name)' or 'CPU'."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return f"GPU ({len(gpus)} visible, TensorFlow)" if gpus else "CPU (TensorFlow)"
    if backend == "torch":
        import torch

        return f"GPU ({torch.cuda.get_device_name(0)}, PyTorch)" if torch.cuda.is_available() else "CPU (PyTorch)"
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return f"{device.platform.upper()} ({device.device_kind}, JAX)"
    return backend


def package_versions():
    import importlib

    import sklearn

    backend = keras.backend.backend()
    return {"deepgmap": __version__, "keras": keras.__version__, "backend": backend,
            backend: importlib.import_module(backend).__version__, "numpy": np.__version__,
            "scikit-learn": sklearn.__version__, "python": platform.python_version()}


def configure_determinism(seed):
    """Same seed, same inputs, same weights (on CPU): seeds Python, numpy and the backend,
    and asks TensorFlow for deterministic kernels."""
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
