"""The settings of the runs whose library modules import Keras (training, prediction, variant
scoring), apart from them: the commands take their defaults from here before they import it.
Each field's default is the one place that default is declared (argparse shows it in --help)."""

from dataclasses import dataclass

from .bounds import COUNT, NON_NEGATIVE, POSITIVE, POSITIVE_COUNT, PROBABILITY
from .errors import InputError
from .models import DEFAULT_MODEL, architecture
from .recipes import recipe
from .windows import WindowSettings


@dataclass
class TrainSettings:
    model: str = DEFAULT_MODEL
    width_scale: float = 1.0
    epochs: int = 10
    steps_per_epoch: int = 0        # 0: one pass over the train windows
    batch_size: int = 0             # 0: the recipe's
    learning_rate: float = 0.0      # 0: the recipe's
    seed: int = 0
    patience: int = 3               # 0: no early stopping
    max_valid_windows: int = 0      # 0: all
    max_test_windows: int = 0       # 0: all
    loader_threads: int = 1         # threads reading batches ahead
    distribute: str = ""            # "": one device; mirrored | multi-worker: tf.distribute replicas
    recipe: str = "default"         # see deepgmap_core.recipes
    max_minutes: float = 0.0        # 0: no time budget

    def check(self):
        recipe(self.recipe)
        architecture(self.model)
        POSITIVE_COUNT.check(self.loader_threads, "--threads")
        for bounds, names in ((POSITIVE_COUNT, ("epochs",)),
                              (COUNT, ("steps_per_epoch", "patience", "max_valid_windows", "max_test_windows",
                                       "batch_size")),
                              (NON_NEGATIVE, ("learning_rate", "max_minutes")), (POSITIVE, ("width_scale",))):
            for name in names:
                bounds.check(getattr(self, name), f"--{name.replace('_', '-')}")

    @property
    def training_recipe(self):
        return recipe(self.recipe)

    @property
    def batch(self):
        return self.batch_size or self.training_recipe.batch_size

    @property
    def peak_learning_rate(self):
        return self.learning_rate or self.training_recipe.learning_rate


TRUNK_MODES = ("auto", "shared", "per-window")


@dataclass
class PredictSettings:
    stride: int = WindowSettings.stride
    batch_size: int = 256
    rc_average: bool = False
    max_n_fraction: float = 0.5
    threads: int = 1
    trunk: str = "auto"             # shared | per-window | auto: shared on a CPU, per window on a GPU

    def check(self):
        if self.stride <= 0:
            raise InputError(f"--stride must be > 0, got {self.stride}")
        if self.batch_size <= 0:
            raise InputError(f"--batch-size must be > 0, got {self.batch_size}")
        if self.trunk not in TRUNK_MODES:
            raise InputError(f"--trunk must be one of {', '.join(TRUNK_MODES)}, got {self.trunk!r}")


@dataclass
class VariantSettings:
    batch_size: int = 256
    rc_average: bool = False
    saliency_window: int = 0            # > 0: saliency at the variant and its rank among this many bases around it
    max_ref_mismatch: float = 0.5       # stop when more than this fraction of checked REFs mismatch
    chunk_records: int = 1024           # records read, scored and written at a time

    def check(self):
        if self.batch_size <= 0:
            raise InputError(f"--batch-size must be > 0, got {self.batch_size}")
        COUNT.check(self.saliency_window, "--saliency-window")
        PROBABILITY.check(self.max_ref_mismatch, "--max-ref-mismatch")
