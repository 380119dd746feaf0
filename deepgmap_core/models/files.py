"""Model files: a Keras `.keras` archive with a `deepgmap.json` entry beside Keras's own.

The entry holds what predicting needs and what a reviewer asks: class names, window size,
one-hot order, model name and width scale, the chromosome split, seed, package versions,
training history and final metrics. Keras ignores the extra entry when loading.
"""

import json
import os
import tempfile
import zipfile

import keras

from ..errors import InputError
from ..fileio import atomic_paths, check_readable
from . import layers  # noqa: F401  (registers the custom layers for loading)

METADATA_ENTRY = "deepgmap.json"
FORMAT = "deepgmap-model/1"


def save_model(model, path, metadata, immediate=False):
    """Write model + metadata to `path` atomically (fileio.atomic_paths: a temporary name in the
    same folder, then a rename; `immediate` renames at once even inside an output group, for
    files a run reads back, as its checkpoint)."""
    with atomic_paths([path], suffix=".keras", immediate=immediate) as (tmp,):
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(METADATA_ENTRY, json.dumps({"format": FORMAT, **metadata}, indent=2, default=str))


def read_metadata(path):
    """The deepgmap.json entry of a model file, or InputError if it is not one of ours."""
    check_readable(path, "model file")
    try:
        with zipfile.ZipFile(path) as archive:
            metadata = json.loads(archive.read(METADATA_ENTRY))
    except (zipfile.BadZipFile, KeyError, ValueError):
        raise InputError(f"{path}: not a DeepGMAP model file (a .keras archive with {METADATA_ENTRY})") from None
    stored_format = metadata.pop("format", None)
    if stored_format != FORMAT:
        raise InputError(f"{path}: unsupported model file format {stored_format!r} (expected {FORMAT})")
    return metadata


def load_model(path, compile=True):
    """(Keras model, metadata) from a DeepGMAP model file."""
    metadata = read_metadata(path)
    with tempfile.TemporaryDirectory(prefix="deepgmap-model-") as folder:
        # Keras accepts only names ending in .keras; Galaxy's datasets end in .dat.
        named = os.path.join(folder, "model.keras")
        os.symlink(os.path.abspath(path), named)
        try:
            model = keras.models.load_model(named, compile=compile)
        except Exception as error:  # Keras raises many types for broken archives
            raise InputError(f"{path}: cannot load the model ({type(error).__name__}: {error})") from None
    return model, metadata
