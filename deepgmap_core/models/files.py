"""Model files: a Keras `.keras` archive with a `deepgmap.json` entry beside Keras's own.

The entry (a ModelInfo) holds what predicting needs and what a reviewer asks: class names,
window size and flank, one-hot order, model name and width scale, the chromosome split, seed,
package versions, training history, final metrics, calibration and baselines. Keras ignores
the extra entry when loading.
"""

import json
import os
import tempfile
import zipfile
from dataclasses import MISSING, asdict, dataclass, field, fields

import keras

from ..errors import InputError
from ..fileio import atomic_paths, check_readable, scratch_failure
from ..genome import ONE_HOT_ORDER
from ..windows import SPLITS, WindowSettings
from . import layers  # noqa: F401  (registers the custom layers for loading)

METADATA_ENTRY = "deepgmap.json"
FORMAT = "deepgmap-model/1"


@dataclass(frozen=True)
class ModelInfo:
    """What a model file says of its model: the one reader and writer of deepgmap.json."""

    class_names: list
    window: int                 # bp the model reads: its labelled window and `flank` bp each side
    model: str                  # architecture (models.ARCHITECTURES)
    one_hot_order: str
    width_scale: float = 1.0
    split: dict = field(default_factory=dict)          # split name -> sorted chromosomes of its training windows
    seed: int = None
    versions: dict = field(default_factory=dict)       # backend.package_versions() of the training run
    windows_table: dict = field(default_factory=dict)  # the windows table's provenance (its ## lines)
    state: dict = field(default_factory=dict)          # training.TrainingState: epochs, best epoch, history
    command: str = ""
    settings: dict = field(default_factory=dict)     # training.TrainSettings
    recipe: dict = field(default_factory=dict)       # recipes.TrainingRecipe
    batch_size: int = None      # windows per batch and peak learning rate the run used (the recipe's
    learning_rate: float = None  # where the settings leave them to it)
    rc_average: bool = False    # trained on both strands: scored and predicted as the mean of both
    replicas: int = 1
    final_metrics: dict = field(default_factory=dict)  # split -> scoring rows of the best model
    calibration: dict = None    # calibration.calibration_entry; None: trained before it was recorded
    baselines: dict = field(default_factory=dict)      # split -> baseline scoring rows
    training_data: dict = field(default_factory=dict)  # fingerprints.training_data_fingerprint; {}: not recorded

    @property
    def flank(self):
        return int(self.windows_table.get("flank", 0))

    @property
    def labelled_window(self):
        """bp a prediction is about: the window the labels were counted on, without the flanks."""
        return self.window - 2 * self.flank

    @property
    def stride(self):
        """bp between the starts of the training windows."""
        return int(self.windows_table.get("stride", WindowSettings.stride))

    def _well_formed(self):
        names = self.class_names
        if (not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names)
                or not isinstance(self.window, int) or self.window <= 0 or not isinstance(self.windows_table, dict)
                or not isinstance(self.split, dict) or set(self.split) - set(SPLITS)):
            return False
        try:
            return 0 <= self.flank < self.window and self.stride > 0
        except (TypeError, ValueError):  # the table's flank or stride not a whole number
            return False

    def to_json(self):
        return json.dumps({"format": FORMAT, **asdict(self)}, indent=2, default=str)

    @classmethod
    def from_json(cls, text, path):
        """The entry's ModelInfo, or InputError naming what is missing or wrong; keys of earlier
        versions that nothing reads any more are left out."""
        try:
            entry = json.loads(text)
        except ValueError:
            entry = None
        if not isinstance(entry, dict):
            raise InputError(f"{path}: not a DeepGMAP model file ({METADATA_ENTRY} is not a JSON object)")
        stored_format = entry.get("format")
        if stored_format != FORMAT:
            raise InputError(f"{path}: unsupported model file format {stored_format!r} (expected {FORMAT})")
        known = {f.name: entry[f.name] for f in fields(cls) if f.name in entry}
        missing = [f.name for f in fields(cls)
                   if f.name not in known and f.default is MISSING and f.default_factory is MISSING]
        if missing:
            raise InputError(f"{path}: model file without {', '.join(missing)} in {METADATA_ENTRY}")
        info = cls(**known)
        if not info._well_formed():
            raise InputError(f"{path}: model file with a malformed {METADATA_ENTRY} (class names, window, flank, "
                             f"stride or split)")
        if info.one_hot_order != ONE_HOT_ORDER:
            raise InputError(f"{path}: the model was trained with one-hot order {info.one_hot_order!r}, this suite "
                             f"uses {ONE_HOT_ORDER}")
        return info


def save_model(model, path, info, immediate=False):
    """Write model + its ModelInfo to `path` atomically (fileio.atomic_paths: a temporary name in
    the same folder, then a rename; `immediate` renames at once even inside an output group, for
    files a run reads back, as its checkpoint)."""
    with atomic_paths([path], suffix=".keras", immediate=immediate) as (tmp,):
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(METADATA_ENTRY, info.to_json())


def read_model_info(path):
    """The ModelInfo of a model file, or InputError if it is not one of ours."""
    check_readable(path, "model file")
    try:
        with zipfile.ZipFile(path) as archive:
            text = archive.read(METADATA_ENTRY)
    except (zipfile.BadZipFile, KeyError):
        raise InputError(f"{path}: not a DeepGMAP model file (a .keras archive with {METADATA_ENTRY})") from None
    return ModelInfo.from_json(text, path)


def load_model(path, compile=True):
    """(Keras model, ModelInfo) from a DeepGMAP model file."""
    info = read_model_info(path)
    with tempfile.TemporaryDirectory(prefix="deepgmap-model-") as folder:
        # Keras accepts only names ending in .keras; Galaxy's datasets end in .dat.
        named = os.path.join(folder, "model.keras")
        os.symlink(os.path.abspath(path), named)
        try:
            model = keras.models.load_model(named, compile=compile)
        except Exception as error:  # Keras raises many types for broken archives
            scratch = scratch_failure(error, tempfile.gettempdir())  # where Keras unpacks the archive
            if scratch:
                raise InputError(f"{path}: Keras unpacks a model to load it, and {scratch}") from None
            raise InputError(f"{path}: cannot load the model ({type(error).__name__}: {error})") from None
    return model, info
