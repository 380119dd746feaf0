"""Training on windows streamed from the genome, with validation on held-out chromosomes.

Windows come from a make-training-windows table and are read from the FASTA by coordinates
and one-hot encoded batch by batch: memory is O(batch), the data set is never materialised.
Every epoch the model is scored on the valid split (AUROC, AUPRC per class); the best model
by mean AUPRC is kept, training stops early after `patience` epochs without improvement, and
a checkpoint after each epoch lets an interrupted run resume.
"""

import base64
import io
import math
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import keras
import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from . import __version__
from .distribute import (distribution_strategy, predict_on_replicas, replica_count, strategy_scope, train_step,
                         worker_output)
from .errors import InputError
from .genome import ONE_HOT_ORDER, one_hot_windows
from .models.build import build_model
from .models.files import load_model, read_metadata, save_model
from .progress import ProgressBar, message, warn
from .windows import SPLITS


@dataclass
class TrainSettings:
    model: str = "conv4-frss"
    width_scale: float = 1.0
    epochs: int = 10
    steps_per_epoch: int = 0        # 0: one pass over the train windows
    batch_size: int = 100
    learning_rate: float = 1e-4
    seed: int = 0
    patience: int = 3               # 0: no early stopping
    max_valid_windows: int = 0      # 0: all
    max_test_windows: int = 0       # 0: all
    loader_threads: int = 1         # threads reading batches ahead
    distribute: str = ""            # "": one device; mirrored | multi-worker: tf.distribute replicas

    def check(self):
        for name in ("epochs", "batch_size"):
            if getattr(self, name) <= 0:
                raise InputError(f"--{name.replace('_', '-')} must be > 0, got {getattr(self, name)}")
        if self.loader_threads < 1:
            raise InputError(f"--threads must be >= 1, got {self.loader_threads}")
        for name in ("steps_per_epoch", "patience", "max_valid_windows", "max_test_windows"):
            if getattr(self, name) < 0:
                raise InputError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise InputError(f"--learning-rate must be > 0, got {self.learning_rate}")


class TrainBatches:
    """`steps` shuffled batches of epoch `epoch`, from an endless stream of train windows that
    is reshuffled (seeded by pass number) each time it has gone through them all."""

    def __init__(self, genome, table, rows, batch_size, steps, seed):
        self.genome, self.table, self.rows = genome, table, rows
        self.batch_size, self.steps, self.seed = batch_size, steps, seed
        self.epoch = 0
        self._orders = {}

    def _order(self, pass_number):
        if pass_number not in self._orders:
            self._orders = {pass_number: np.random.default_rng([self.seed, pass_number]).permutation(self.rows)}
        return self._orders[pass_number]

    def __len__(self):
        return self.steps

    def __getitem__(self, index):
        first = (self.epoch * self.steps + index) * self.batch_size
        positions = np.arange(first, first + self.batch_size)
        passes, offsets = np.divmod(positions, len(self.rows))
        rows = np.concatenate([self._order(p)[offsets[passes == p]] for p in np.unique(passes)])
        return window_batch(self.genome, self.table, rows)


def prefetched(batches, threads=1):
    """The items of `batches` in order, each read ahead by a pool of `threads` while earlier ones
    are being used (sequence reads and one-hot encoding release the GIL). On a GPU a step can
    take less time than reading one batch of windows from a bgzip FASTA: there, use several."""
    with ThreadPoolExecutor(threads) as pool:
        upcoming = [pool.submit(batches.__getitem__, i) for i in range(min(threads, len(batches)))]
        for index in range(len(batches)):
            current = upcoming.pop(0).result()
            if index + threads < len(batches):
                upcoming.append(pool.submit(batches.__getitem__, index + threads))
            yield current


class _OrderedBatches:
    def __init__(self, genome, table, rows, batch_size):
        self.genome, self.table, self.rows, self.batch_size = genome, table, rows, batch_size

    def __len__(self):
        return math.ceil(len(self.rows) / self.batch_size)

    def __getitem__(self, index):
        return window_batch(self.genome, self.table, self.rows[index * self.batch_size:(index + 1) * self.batch_size])[0]


def predict_rows(model, genome, table, rows, batch_size, threads=1, strategy=None):
    """Predictions (len(rows), classes) for the windows `rows` of `table`, in order; a model
    built under a distribution `strategy` predicts each batch split over its replicas."""
    batches = _OrderedBatches(genome, table, rows, batch_size)
    return np.concatenate([predict_on_replicas(strategy, model, x) for x in prefetched(batches, threads)])


def window_batch(genome, table, rows):
    window = int(table.ends[rows[0]] - table.starts[rows[0]])
    x = one_hot_windows(genome, table.chroms[rows], table.starts[rows], window)
    return x, table.labels[rows].astype(np.float32)


def score_predictions(labels, predictions, class_names, weights=None):
    """Per class: AUROC, AUPRC, positives, windows (NaN where a class has one label only).
    `weights` (per window) let sampled-out negatives count as the windows they stand for."""
    scores = []
    for i, name in enumerate(class_names):
        truth = labels[:, i]
        both = 0 < truth.sum() < len(truth)
        scores.append({"class": name,
                       "auroc": roc_auc_score(truth, predictions[:, i], sample_weight=weights) if both else math.nan,
                       "auprc": average_precision_score(truth, predictions[:, i], sample_weight=weights)
                       if both else math.nan,
                       "positives": int(truth.sum()), "windows": int(len(truth))})
    return scores


def mean_of(scores, key):
    values = [s[key] for s in scores if not math.isnan(s[key])]
    return float(np.mean(values)) if values else math.nan


def binary_cross_entropy(labels, predictions):
    p = np.clip(predictions, 1e-7, 1 - 1e-7)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def split_rows(table, split, limit, seed):
    """Rows of one split; at most `limit` of them (a seeded random subset, in table order)."""
    rows = np.flatnonzero(table.splits == split)
    if limit and len(rows) > limit:
        rows = np.sort(np.random.default_rng([seed, SPLITS.index(split)]).choice(rows, limit, replace=False))
    return rows


def check_table_on_genome(table, genome):
    missing = sorted(set(np.unique(table.chroms)) - set(genome.lengths))
    if missing:
        raise InputError(f"the windows table names chromosome(s) the genome lacks: {', '.join(missing[:5])} "
                         f"(is it the genome the windows were made on?)")


def check_training_data(table, genome, train_rows, valid_rows, batch_size):
    check_table_on_genome(table, genome)
    if len(train_rows) == 0:
        raise InputError("no windows in the train split")
    if len(valid_rows) == 0:
        raise InputError("no windows in the valid split: make the windows with --valid-chroms")
    positives = {split: table.labels[rows].sum(axis=0) for split, rows in (("train", train_rows), ("valid", valid_rows))}
    for split, counts in positives.items():
        if not counts.any():
            raise InputError(f"no positive window in the {split} split")
    if batch_size > len(train_rows):
        raise InputError(f"--batch-size {batch_size} is larger than the {len(train_rows)} train windows")
    for split, counts in positives.items():
        for name, count in zip(table.class_names, counts):
            if count == 0:
                warn(f"class {name} has no positive window in the {split} split: its AUPRC there is undefined")


def configure_determinism(seed):
    """Same seed, same inputs, same weights (on CPU): seeds Python, numpy and the backend,
    and asks TensorFlow for deterministic kernels."""
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def compile_model(model, learning_rate):
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=keras.losses.BinaryCrossentropy())


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


@dataclass
class TrainingState:
    epoch: int = 0                  # epochs done
    best_epoch: int = 0
    best_auprc: float = -1.0
    history: list = field(default_factory=list)


def model_metadata(table, settings, state, extra):
    window = int(table.ends[0] - table.starts[0])
    return {"class_names": table.class_names, "window": window, "one_hot_order": ONE_HOT_ORDER,
            "model": settings.model, "width_scale": settings.width_scale,
            "split": {"train": sorted(set(table.chroms[table.splits == "train"])),
                      "valid": sorted(set(table.chroms[table.splits == "valid"])),
                      "test": sorted(set(table.chroms[table.splits == "test"]))},
            "seed": settings.seed, "settings": asdict(settings), "versions": package_versions(),
            "windows_table": table.metadata, "state": asdict(state), **extra}


def resume_state(checkpoint, table, settings):
    metadata = read_metadata(checkpoint)
    for key, expected in (("model", settings.model), ("width_scale", settings.width_scale),
                          ("class_names", table.class_names)):
        if metadata.get(key) != expected:
            raise InputError(f"{checkpoint}: checkpoint of another run ({key} {metadata.get(key)!r}, "
                             f"this run {expected!r}): remove it or run without --resume")
    model, _ = load_model(checkpoint)
    return model, TrainingState(**metadata["state"])


def train_model(genome, table, settings, output, command_line, resume=False):
    """Train, keep the best model in `output`, return (best model, metadata). With
    settings.distribute, every batch is split over the replicas of a tf.distribute strategy,
    and in a multi-worker cluster only the chief writes `output`."""
    settings.check()
    strategy = distribution_strategy(settings.distribute, keras.backend.backend())
    with worker_output(strategy, output) as path:
        return _train(genome, table, settings, strategy, path, command_line, resume)


def _train(genome, table, settings, strategy, output, command_line, resume):
    train_rows = split_rows(table, "train", 0, settings.seed)
    valid_rows = split_rows(table, "valid", settings.max_valid_windows, settings.seed)
    test_rows = split_rows(table, "test", settings.max_test_windows, settings.seed)
    check_training_data(table, genome, train_rows, valid_rows, settings.batch_size)
    replicas = replica_count(strategy)
    if settings.batch_size % replicas:
        raise InputError(f"--batch-size {settings.batch_size} is not a multiple of the {replicas} replicas")
    steps = settings.steps_per_epoch or math.ceil(len(train_rows) / settings.batch_size)
    checkpoint = output + ".checkpoint.keras"
    configure_determinism(settings.seed)
    with strategy_scope(strategy):
        if resume and os.path.exists(checkpoint):
            model, state = resume_state(checkpoint, table, settings)
            message(f"resuming from {checkpoint} after epoch {state.epoch}")
        else:
            model = build_model(settings.model, len(table.class_names), int(table.ends[0] - table.starts[0]),
                                settings.width_scale)
            compile_model(model, settings.learning_rate)
            state = TrainingState()
    extra = {"command": command_line, "replicas": replicas}
    on_replicas = f", {replicas} replica(s) ({settings.distribute})" if strategy is not None else ""
    message(f"{settings.model} (width x{settings.width_scale}, {model.count_params():,} parameters) on "
            f"{accelerator()}{on_replicas}: {len(train_rows):,} train, {len(valid_rows):,} valid, "
            f"{len(test_rows):,} test windows; {steps} steps of {settings.batch_size} per epoch")
    batches = TrainBatches(genome, table, train_rows, settings.batch_size, steps, settings.seed)
    train_on_batch = train_step(strategy, model, *batches[0])
    labels = table.labels[valid_rows].astype(np.float32)
    # A plain loop of train_on_batch: Keras's fit() on Python data runs a tf.data pipeline whose
    # threads took a third of the two cores here; the next batch is read in a thread instead.
    while state.epoch < settings.epochs and not (settings.patience and
                                                 state.epoch - state.best_epoch >= settings.patience):
        batches.epoch = state.epoch
        started, losses = time.monotonic(), []
        with ProgressBar(steps * settings.batch_size, f"epoch {state.epoch + 1}/{settings.epochs}", "samples") as bar:
            for x, y in prefetched(batches, settings.loader_threads):
                losses.append(train_on_batch(x, y))
                bar.update(settings.batch_size)
        seconds = time.monotonic() - started
        predictions = predict_rows(model, genome, table, valid_rows, settings.batch_size, settings.loader_threads,
                                   strategy)
        scores = score_predictions(labels, predictions, table.class_names)
        state.epoch += 1
        record = {"epoch": state.epoch, "train_loss": float(np.mean(losses)),
                  "valid_loss": binary_cross_entropy(labels, predictions), "seconds": seconds,
                  "samples_per_second": steps * settings.batch_size / seconds, "valid": scores,
                  "valid_mean_auprc": mean_of(scores, "auprc"), "valid_mean_auroc": mean_of(scores, "auroc")}
        state.history.append(record)
        improved = record["valid_mean_auprc"] > state.best_auprc
        if improved:
            state.best_auprc, state.best_epoch = record["valid_mean_auprc"], state.epoch
            save_model(model, output, model_metadata(table, settings, state, extra))
        message(f"epoch {state.epoch}: train loss {record['train_loss']:.4f}, valid loss {record['valid_loss']:.4f}, "
                f"valid AUROC {record['valid_mean_auroc']:.4f}, AUPRC {record['valid_mean_auprc']:.4f}"
                f"{' (best so far)' if improved else ''}; {record['samples_per_second']:.1f} samples/s")
        save_model(model, checkpoint, model_metadata(table, settings, state, extra))
    best, _ = load_model(output)
    final = {"valid": state.history[state.best_epoch - 1]["valid"]}
    if len(test_rows):
        test_predictions = predict_rows(best, genome, table, test_rows, settings.batch_size, settings.loader_threads)
        final["test"] = score_predictions(table.labels[test_rows], test_predictions, table.class_names)
    extra["final_metrics"] = final
    metadata = model_metadata(table, settings, state, extra)
    save_model(best, output, metadata)
    os.unlink(checkpoint)
    return best, metadata


def metrics_table(metadata):
    """Per epoch and class the valid AUROC/AUPRC and losses; then the best model on valid and test."""
    lines = [f"##deepgmap_version={__version__}", "##tool=train-model", f"##command={metadata['command']}",
             f"##model={metadata['model']}", f"##width_scale={metadata['width_scale']}",
             f"##best_epoch={metadata['state']['best_epoch']}",
             "#epoch\tsplit\tclass\tauroc\tauprc\tpositives\twindows\ttrain_loss\tvalid_loss"]
    for record in metadata["state"]["history"]:
        for score in record["valid"]:
            lines.append(f"{record['epoch']}\tvalid\t{score['class']}\t{score['auroc']:.6f}\t{score['auprc']:.6f}\t"
                         f"{score['positives']}\t{score['windows']}\t{record['train_loss']:.6f}\t{record['valid_loss']:.6f}")
    for split, scores in metadata["final_metrics"].items():
        for score in scores:
            lines.append(f"best\t{split}\t{score['class']}\t{score['auroc']:.6f}\t{score['auprc']:.6f}\t"
                         f"{score['positives']}\t{score['windows']}\t.\t.")
    return "\n".join(lines) + "\n"


def learning_curves_png(metadata):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    history = metadata["state"]["history"]
    epochs = [r["epoch"] for r in history]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    left.plot(epochs, [r["valid_loss"] for r in history], "o-", label="valid")
    left.set(xlabel="epoch", ylabel="binary cross-entropy", title="Loss")
    left.legend()
    for i, name in enumerate(metadata["class_names"]):
        right.plot(epochs, [r["valid"][i]["auprc"] for r in history], "o-", label=name)
    right.axvline(metadata["state"]["best_epoch"], color="grey", linestyle=":", label="best")
    right.set(xlabel="epoch", ylabel="AUPRC (valid)", title="AUPRC per class", ylim=(0, 1))
    right.legend(fontsize=8)
    for axes in (left, right):
        axes.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def report_html(metadata):
    """A self-contained HTML page: learning curves (embedded PNG), the final metrics, provenance."""
    from html import escape

    picture = base64.b64encode(learning_curves_png(metadata)).decode()
    rows = "".join(f"<tr><td>{escape(split)}</td><td>{escape(s['class'])}</td><td>{s['auroc']:.4f}</td>"
                   f"<td>{s['auprc']:.4f}</td><td>{s['positives']:,}</td><td>{s['windows']:,}</td></tr>"
                   for split, scores in metadata["final_metrics"].items() for s in scores)
    facts = {"model": f"{metadata['model']} (width x{metadata['width_scale']})",
             "classes": ", ".join(metadata["class_names"]), "window": f"{metadata['window']} bp",
             "best epoch": metadata["state"]["best_epoch"], "seed": metadata["seed"],
             "train chromosomes": ", ".join(metadata["split"]["train"]),
             "valid chromosomes": ", ".join(metadata["split"]["valid"]),
             "test chromosomes": ", ".join(metadata["split"]["test"]) or "none",
             "versions": ", ".join(f"{k} {v}" for k, v in metadata["versions"].items()),
             "command": metadata["command"]}
    facts_rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in facts.items())
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>DeepGMAP training report: {escape(metadata['model'])}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}</style></head><body>
<h1>DeepGMAP training report</h1>
<h2>Learning curves</h2><img alt="loss and AUPRC per epoch" src="data:image/png;base64,{picture}">
<h2>Best model on held-out chromosomes</h2>
<table><tr><th>split</th><th>class</th><th>AUROC</th><th>AUPRC</th><th>positives</th><th>windows</th></tr>{rows}</table>
<h2>Run</h2><table>{facts_rows}</table>
</body></html>
"""
