"""Training recipes: how a model's weights start and are updated, chosen by name.

paper: the DeepGMAP paper's training as its code ran it: the original's truncated-normal
  initialisation, Adam at 1e-4 (RMSprop for DanQ), mini-batches of 100, each split into two
  halves and the optimiser step applied to the halves in turn, twice each (four updates per
  batch), no augmentation. (Keras's RMSprop starts its mean square at 0 where TF1's started
  at 1: its first DanQ steps are larger.)
default: chosen by measurement to learn fast on a 2-core CPU (benchmarks/time_to_accuracy.py):
  He-normal initialisation with the output bias at the train prevalence; Adam at 2e-3 with a
  linear warm-up over 400 updates, then a cosine decay over the run (its epochs x steps or
  its --max-minutes, whichever ends it first); batches of 16 (more updates per second of CPU
  learnt faster than larger batches); each window read at a random shift of up to 50 bp and
  reverse-complemented with probability 1/2 (seeded), so position and strand are not learnt.
"""

from dataclasses import dataclass

from .errors import InputError


@dataclass(frozen=True)
class Recipe:
    name: str
    learning_rate: float
    batch_size: int
    initialization: str          # see models.build.initializers
    optimizer: str = "adam"      # adam | rmsprop
    updates_per_batch: int = 1   # 4: the paper's halves, twice each
    warmup_steps: int = 0        # linear learning-rate warm-up
    cosine_decay: bool = False   # learning rate follows a half cosine to 0 over the run
    max_shift: int = 0           # bp; each train window read this far off at random (both ways)
    reverse_complement: bool = False
    output_bias: bool = False    # start the output at the train prevalence
    epsilon: float = 1e-7        # the optimiser's; TF1's Adam (the original's) used 1e-8

    def optimizer_for(self, model_name):
        # The paper trained DanQ (not DanQ-FRSS) with RMSprop, as DanQ's authors did.
        return "rmsprop" if self.name == "paper" and model_name == "danq" else self.optimizer


RECIPES = {
    "default": Recipe("default", learning_rate=2e-3, batch_size=16, initialization="he", warmup_steps=400,
                      cosine_decay=True, max_shift=50, reverse_complement=True, output_bias=True),
    "paper": Recipe("paper", learning_rate=1e-4, batch_size=100, initialization="paper", updates_per_batch=4,
                    epsilon=1e-8),
}


def recipe(name):
    if name not in RECIPES:
        raise InputError(f"unknown recipe {name!r}; the recipes are: {', '.join(RECIPES)}")
    return RECIPES[name]
