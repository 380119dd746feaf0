"""Training on windows streamed from the genome, with validation on held-out chromosomes.

Windows come from a make-training-windows table and are read from the FASTA by coordinates
and one-hot encoded batch by batch: memory is O(batch), the data set is never materialised.
Every epoch the model is scored on the valid split (AUROC, AUPRC per class); the best model
by mean AUPRC is kept, training stops early after `patience` epochs without improvement, and
a checkpoint after each epoch lets an interrupted run resume.
"""

import math
import os
import time
from dataclasses import asdict, dataclass, field

import keras
import numpy as np

from .backend import accelerator, configure_determinism, package_versions
from .baselines import baseline_scores, comparison_html
from .calibration import DEFAULT_PEAK_PRECISION, calibration_entry, check_peak_precision
from .batching import predict_rows, prefetched, split_rows, window_batch
from .distribute import distribution_strategy, replica_count, strategy_scope, train_step, worker_output
from .errors import InputError
from .fileio import provenance_lines, remove_when_committed
from .fingerprints import training_data_differences, training_data_fingerprint
from .genome import ONE_HOT_ORDER, one_hot_windows, reverse_complement_one_hot
from .models.build import build_model
from .models.files import ModelInfo, load_model, read_model_info, save_model
from .motifs import read_motif_db
from .progress import ProgressBar, message, warn
from .reports import embedded_png, figure_bytes, html_page, pyplot, scores_table
from .scoring import mean_of, score_predictions
from .settings import PredictSettings
from .windows import LABEL_BLOCK, check_table_on_genome, label_sums


class TrainBatches:
    """`steps` shuffled batches of epoch `epoch`, from an endless stream of train windows that
    is reshuffled (seeded by pass number) each time it has gone through them all. With
    `max_shift`, each window is read up to that many bp off its place (kept inside its
    chromosome); with `reverse_complement`, half of them at random are reverse-complemented.
    The draws are seeded by (seed, epoch, batch), whatever thread reads the batch."""

    def __init__(self, genome, table, rows, batch_size, steps, seed, max_shift=0, reverse_complement=False):
        self.genome, self.table, self.rows = genome, table, rows
        self.batch_size, self.steps, self.seed = batch_size, steps, seed
        self.max_shift, self.reverse_complement = max_shift, reverse_complement
        self.epoch = 0
        self._orders = {}
        if max_shift:
            names, inverse = np.unique(table.chroms[rows], return_inverse=True)
            lengths = np.array([genome.lengths[name] for name in names], dtype=np.int64)
            self._last_start = np.zeros(len(table.starts), dtype=np.int64)  # by table row
            self._last_start[rows] = lengths[inverse] - (table.ends[rows] - table.starts[rows])

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
        if not (self.max_shift or self.reverse_complement):
            return window_batch(self.genome, self.table, rows)
        rng = np.random.default_rng([self.seed, self.epoch, index, 1])
        starts = self.table.starts[rows]
        if self.max_shift:
            shifts = rng.integers(-self.max_shift, self.max_shift + 1, len(rows))
            starts = np.clip(starts + shifts, 0, self._last_start[rows])
        window = int(self.table.ends[rows[0]] - self.table.starts[rows[0]])
        x = one_hot_windows(self.genome, self.table.chroms[rows], starts, window)
        if self.reverse_complement:
            flip = rng.random(len(rows)) < 0.5
            x[flip] = reverse_complement_one_hot(x[flip])
        return x, self.table.labels[rows].astype(np.float32)


def binary_cross_entropy(labels, predictions, block=LABEL_BLOCK):
    """Mean over windows and classes, `block` windows at a time: the whole arrays' temporaries
    would take several times the predictions' memory (GBs for a genome's valid windows)."""
    total = 0.0
    for first in range(0, len(labels), block):
        y = labels[first:first + block].astype(np.float32)
        p = np.clip(predictions[first:first + block], 1e-7, 1 - 1e-7)
        total += float(np.sum(y * np.log(p) + (1 - y) * np.log(1 - p), dtype=np.float64))
    return -total / max(labels.size, 1)


def check_training_data(table, genome, train_rows, valid_rows, batch_size):
    check_table_on_genome(table, genome)
    if len(train_rows) == 0:
        raise InputError("no windows in the train split")
    if len(valid_rows) == 0:
        raise InputError("no windows in the valid split: make the windows with --valid-chroms")
    positives = {split: label_sums(table, rows) for split, rows in (("train", train_rows), ("valid", valid_rows))}
    for split, counts in positives.items():
        if not counts.any():
            raise InputError(f"no positive window in the {split} split")
    if batch_size > len(train_rows):
        raise InputError(f"--batch-size {batch_size} is larger than the {len(train_rows)} train windows")
    for split, counts in positives.items():
        for name, count in zip(table.class_names, counts):
            if count == 0:
                warn(f"class {name} has no positive window in the {split} split: its AUPRC there is undefined")


def reseed_random_layers(model, seed, epoch):
    """Set the random state of the model's dropout layers from (seed, epoch) at an epoch's start.
    Keras keeps it outside the saved weights, so a run resumed from a checkpoint drew other
    dropout masks than the uninterrupted run; now both draw the same."""
    states = [v for v in model.non_trainable_variables if v.path.endswith("seed_generator_state")]
    for index, state in enumerate(states):
        first = np.random.default_rng([seed, epoch, index]).integers(1, 2**31 - 1)
        state.assign(np.array([first, 0], dtype=state.dtype))


OPTIMIZERS = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}


def compile_model(model, learning_rate, optimizer="adam", epsilon=1e-7):
    model.compile(optimizer=OPTIMIZERS[optimizer](learning_rate, epsilon=epsilon),
                  loss=keras.losses.BinaryCrossentropy())


@dataclass
class TrainingState:
    epoch: int = 0                  # epochs done
    best_epoch: int = 0
    best_auprc: float = -1.0
    updates: int = 0                # optimiser steps done
    seconds: float = 0.0            # training time spent (the --max-minutes budget)
    stop: str = ""                  # why training stopped
    start_loss: float = 0.0         # the untrained model's loss on the run's first batch (0: not yet known)
    history: list = field(default_factory=list)

    def learning_rate(self, settings, steps, seconds):
        """The recipe's learning rate after `self.updates` updates and `seconds` of training, in
        a run of settings.epochs x `steps` batches or settings.max_minutes, whichever ends first."""
        spec = settings.training_recipe
        ramp = min(1.0, (self.updates + 1) / spec.warmup_steps) if spec.warmup_steps else 1.0
        if not spec.cosine_decay:
            return settings.peak_learning_rate * ramp
        done = self.updates / (settings.epochs * steps * spec.updates_per_batch)
        if settings.max_minutes:
            done = max(done, seconds / (settings.max_minutes * 60))
        return settings.peak_learning_rate * ramp * 0.5 * (1 + math.cos(math.pi * min(done, 1.0)))


# An epoch whose mean loss is this many times the untrained model's has diverged: it predicts far
# worse than the class prior it started from. (With the regularised recipes a huge learning rate
# gives a huge but finite loss, e.g. 4.6e34 with oneDNN's kernels, so finiteness alone misses it.)
DIVERGED_LOSS_FACTOR = 10


def divergence(model, losses, predictions, start_loss):
    """Why training has diverged ('' if it has not): an epoch's loss not finite or more than
    DIVERGED_LOSS_FACTOR times `start_loss`, valid predictions or weights not finite."""
    loss = float(np.mean(losses))
    if not math.isfinite(loss):
        return f"the loss is {loss}"
    if loss > DIVERGED_LOSS_FACTOR * start_loss:
        return f"the loss, {loss:.3g}, is over {DIVERGED_LOSS_FACTOR} times the untrained model's ({start_loss:.3g})"
    if not np.isfinite(predictions).all():
        return "the predictions are no longer finite"
    if not all(np.isfinite(keras.ops.convert_to_numpy(weight)).all() for weight in model.trainable_weights):
        return "the weights are no longer finite"
    return ""


def model_info(table, settings, state, extra):
    return ModelInfo(class_names=table.class_names, window=table.input_length, model=settings.model,
                     width_scale=settings.width_scale, one_hot_order=ONE_HOT_ORDER, split=table.split,
                     seed=settings.seed, versions=package_versions(), windows_table=table.metadata,
                     state=asdict(state), settings=asdict(settings), recipe=asdict(settings.training_recipe),
                     batch_size=settings.batch, learning_rate=settings.peak_learning_rate,
                     # Trained on both strands (strand augmentation): scored and predicted as the mean of both.
                     rc_average=settings.training_recipe.reverse_complement, **extra)


# What a resumed run must share with the checkpoint's (the rest, e.g. --epochs or --max-minutes, may change).
FIXED_ON_RESUME = ("model", "width_scale", "recipe", "seed", "batch_size", "learning_rate", "steps_per_epoch")


def resume_state(checkpoint, table, settings, training_data):
    """The checkpoint's model and TrainingState; InputError naming what differs if it was trained with
    other settings or classes, or on another windows table or genome (`training_data`: this run's
    fingerprints.training_data_fingerprint)."""
    info = read_model_info(checkpoint)
    saved = dict(info.settings, class_names=info.class_names)
    wanted = dict(asdict(settings), class_names=table.class_names)
    differences = [f"{key.replace('_', '-')} {saved.get(key)!r}, this run {wanted[key]!r}"
                   for key in FIXED_ON_RESUME + ("class_names",) if saved.get(key) != wanted[key]]
    if info.training_data:
        differences += training_data_differences(info.training_data, training_data)
    else:  # refusing would throw away the epochs of a run interrupted just before an upgrade
        warn(f"{checkpoint}: written before checkpoints recorded their windows table and genome: cannot check "
             f"that this run's are the ones it was trained on")
    if differences:
        raise InputError(f"{checkpoint}: checkpoint of another run ({'; '.join(differences)}): "
                         f"remove it or run without --resume")
    model, _ = load_model(checkpoint)
    state = TrainingState(**info.state)
    if state.stop.startswith("time budget"):
        state.stop = ""  # goes on if the resumed run's --max-minutes leaves time (checked before each batch)
    return model, state


def train_model(genome, table, settings, output, command_line, resume=False, peak_precision=DEFAULT_PEAK_PRECISION,
                motif_db=None):
    """Train, keep the best model in `output`, return (best model, its ModelInfo). With
    settings.distribute, every batch is split over the replicas of a tf.distribute strategy,
    and in a multi-worker cluster only the chief writes `output`. The model file records the
    class-balance correction and per class the peak threshold reaching `peak_precision` on the
    valid windows (deepgmap_core.calibration), and the baselines on the held-out splits (GC,
    chance and, with `motif_db`, a MEME file, the best known motif: deepgmap_core.baselines)."""
    settings.check()
    check_peak_precision(peak_precision)
    known_motifs = read_motif_db(motif_db) if motif_db else None  # read now: a bad file fails before training
    strategy = distribution_strategy(settings.distribute, keras.backend.backend())
    with worker_output(strategy, output) as path:
        return _train(genome, table, settings, strategy, path, command_line, resume, peak_precision, known_motifs)


def train_prevalence_logits(table, rows):
    """Per class, the logit of the positive fraction of `rows` (clipped away from 0 and 1)."""
    prevalence = np.clip(label_sums(table, rows) / len(rows), 1e-4, 1 - 1e-4)
    return np.log(prevalence / (1 - prevalence))


def new_model(table, settings, train_rows):
    spec = settings.training_recipe
    model = build_model(settings.model, len(table.class_names), int(table.ends[0] - table.starts[0]),
                        settings.width_scale, spec.initialization,
                        train_prevalence_logits(table, train_rows) if spec.output_bias else None)
    compile_model(model, settings.peak_learning_rate, spec.optimizer_for(settings.model), spec.epsilon)
    return model


def update_on_batch(step, settings, x, y):
    """The recipe's updates on one batch: one, or the paper's four (the two halves in turn, twice,
    the second half first as the original's train_loop.py does)."""
    if settings.training_recipe.updates_per_batch == 1:
        return [step(x, y)]
    half = len(x) // 2
    halves = [(x[half:], y[half:]), (x[:half], y[:half])]
    return [step(*halves[i % 2]) for i in range(settings.training_recipe.updates_per_batch)]


def _train(genome, table, settings, strategy, output, command_line, resume, peak_precision=DEFAULT_PEAK_PRECISION,
           known_motifs=None):
    train_rows = split_rows(table, "train", 0, settings.seed)
    valid_rows = split_rows(table, "valid", settings.max_valid_windows, settings.seed)
    test_rows = split_rows(table, "test", settings.max_test_windows, settings.seed)
    spec = settings.training_recipe
    batch_size = settings.batch
    rc_average = spec.reverse_complement  # a model trained on both strands is scored on both
    check_training_data(table, genome, train_rows, valid_rows, batch_size)
    replicas = replica_count(strategy)
    parts = 2 if spec.updates_per_batch > 1 else 1  # the paper's recipe updates on half batches
    if batch_size % (parts * replicas):
        raise InputError(f"--batch-size {batch_size} does not split into {parts} part(s) of equal shares for "
                         f"{replicas} replica(s)")
    if settings.max_minutes and settings.distribute == "multi-worker":
        raise InputError("--max-minutes cannot be used with --distribute multi-worker (each worker would stop "
                         "on its own clock)")
    steps = settings.steps_per_epoch or math.ceil(len(train_rows) / batch_size)
    # Until the run ends, the best model so far and the checkpoint live beside the output, which an
    # interrupted or failed run leaves as it was.
    checkpoint, best_so_far = output + ".checkpoint.keras", output + ".best.keras"
    training_data = training_data_fingerprint(table, genome)
    configure_determinism(settings.seed)
    with strategy_scope(strategy):
        if resume and os.path.exists(checkpoint):
            model, state = resume_state(checkpoint, table, settings, training_data)
            if not os.path.exists(best_so_far):
                raise InputError(f"{checkpoint}: its run's best model {best_so_far} is missing: remove the "
                                 f"checkpoint or run without --resume")
            message(f"resuming from {checkpoint} after epoch {state.epoch}")
        else:
            model = new_model(table, settings, train_rows)
            state = TrainingState()
    extra = {"command": command_line, "replicas": replicas, "training_data": training_data}
    on_replicas = f", {replicas} replica(s) ({settings.distribute})" if strategy is not None else ""
    budget = f", at most {settings.max_minutes:g} minutes" if settings.max_minutes else ""
    message(f"{settings.model} (width x{settings.width_scale}, {model.count_params():,} parameters) on "
            f"{accelerator()}{on_replicas}, recipe {spec.name}: {len(train_rows):,} train, {len(valid_rows):,} "
            f"valid, {len(test_rows):,} test windows; {steps} steps of {batch_size} per epoch{budget}")
    # Scored in prediction-sized batches: the recipe's small training batches cost a call each.
    scoring_batch = max(batch_size, PredictSettings.batch_size)
    batches = TrainBatches(genome, table, train_rows, batch_size, steps, settings.seed, spec.max_shift,
                           spec.reverse_complement)
    x0, y0 = batches[0]
    train_on_batch = train_step(strategy, model, x0[:batch_size // parts], y0[:batch_size // parts])
    labels = table.labels[valid_rows]
    best_predictions = None  # the best epoch's on the valid windows, which the calibration needs again
    budget_seconds = settings.max_minutes * 60 or math.inf
    # A plain loop of train_on_batch: Keras's fit() on Python data runs a tf.data pipeline whose
    # threads took a third of the two cores here; the next batch is read in a thread instead.
    while state.epoch < settings.epochs and not state.stop:
        batches.epoch = state.epoch
        if strategy is None:
            reseed_random_layers(model, settings.seed, state.epoch)
        started, losses, done = time.monotonic(), [], 0
        with ProgressBar(steps * batch_size, f"epoch {state.epoch + 1}/{settings.epochs}", "samples") as bar:
            for x, y in prefetched(batches, settings.loader_threads):
                if state.seconds + time.monotonic() - started >= budget_seconds:
                    state.stop = f"time budget of {settings.max_minutes:g} minutes spent"
                    break
                model.optimizer.learning_rate = state.learning_rate(settings, steps,
                                                                    state.seconds + time.monotonic() - started)
                losses += update_on_batch(train_on_batch, settings, x, y)
                state.updates += spec.updates_per_batch
                done += 1
                bar.update(batch_size)
        if not losses:  # a resumed run with no budget left
            break
        seconds = time.monotonic() - started
        predictions = predict_rows(model, genome, table, valid_rows, scoring_batch, settings.loader_threads,
                                   strategy, rc_average)
        state.seconds += time.monotonic() - started  # the budget counts the scoring too
        state.start_loss = state.start_loss or losses[0]
        problem = divergence(model, losses, predictions, state.start_loss)
        if problem:
            diverged = (f"training diverged in epoch {state.epoch + 1}: {problem} "
                        f"(is the peak learning rate, {settings.peak_learning_rate:g}, too high for this model? "
                        f"see --learning-rate)")
            if not state.best_epoch:
                raise InputError(diverged)
            state.stop = diverged
            break
        scores = score_predictions(labels, predictions, table.class_names)
        state.epoch += 1
        record = {"epoch": state.epoch, "train_loss": float(np.mean(losses)),
                  "valid_loss": binary_cross_entropy(labels, predictions), "seconds": seconds,
                  "minutes_total": state.seconds / 60, "updates": state.updates,
                  "learning_rate": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
                  "samples_per_second": done * batch_size / max(seconds, 1e-9), "valid": scores,
                  "valid_mean_auprc": mean_of(scores, "auprc"), "valid_mean_auroc": mean_of(scores, "auroc")}
        state.history.append(record)
        improved = record["valid_mean_auprc"] > state.best_auprc
        if improved:
            state.best_auprc, state.best_epoch = record["valid_mean_auprc"], state.epoch
            best_predictions = predictions
            save_model(model, best_so_far, model_info(table, settings, state, extra), immediate=True)
        if settings.patience and state.epoch - state.best_epoch >= settings.patience:
            state.stop = f"no improvement in {settings.patience} epochs"
        message(f"epoch {state.epoch}: train loss {record['train_loss']:.4f}, valid loss {record['valid_loss']:.4f}, "
                f"valid AUROC {record['valid_mean_auroc']:.4f}, AUPRC {record['valid_mean_auprc']:.4f}"
                f"{' (best so far)' if improved else ''}; {record['samples_per_second']:.1f} samples/s, "
                f"{state.seconds / 60:.1f} min")
        save_model(model, checkpoint, model_info(table, settings, state, extra), immediate=True)
        del predictions  # before the next epoch's: unless the best, they are not needed again
    if state.stop:
        message(f"stopped after epoch {state.epoch}: {state.stop}; the best model is epoch {state.best_epoch}")
    best, _ = load_model(best_so_far)
    final = {"valid": state.history[state.best_epoch - 1]["valid"]}
    if len(test_rows):
        final["test"] = score_predictions(table.labels[test_rows], predict_rows(
            best, genome, table, test_rows, scoring_batch, settings.loader_threads, rc_average=rc_average),
            table.class_names)
    extra["final_metrics"] = final
    if best_predictions is None:  # the best epoch ran before a --resume
        best_predictions = predict_rows(best, genome, table, valid_rows, scoring_batch, settings.loader_threads,
                                        rc_average=rc_average)
    extra["calibration"] = calibration_entry(table, valid_rows, best_predictions, peak_precision)
    del best_predictions
    extra["baselines"] = baseline_scores(genome, table, {"valid": valid_rows, "test": test_rows}, train_rows,
                                         known_motifs, settings.seed)
    info = model_info(table, settings, state, extra)
    save_model(best, output, info)
    remove_when_committed(checkpoint, best_so_far)  # a run that fails later (its --report) can resume
    return best, info


def metrics_table(info):
    """Per epoch and class the valid AUROC/AUPRC and losses; then the best model on valid and test,
    and the baselines that need no training on the same windows (epoch 'baseline'; the last
    column, method, is 'model' or the baseline: gc, motif:NAME, chance)."""
    lines = provenance_lines("train-model", info.command, model=info.model,
                             width_scale=info.width_scale, best_epoch=info.state["best_epoch"])
    lines += ["#epoch\tsplit\tclass\tauroc\tauprc\tpositives\twindows\ttrain_loss\tvalid_loss\tmethod"]
    for record in info.state["history"]:
        for score in record["valid"]:
            lines.append(f"{record['epoch']}\tvalid\t{score['class']}\t{score['auroc']:.6f}\t{score['auprc']:.6f}\t"
                         f"{score['positives']}\t{score['windows']}\t{record['train_loss']:.6f}\t{record['valid_loss']:.6f}"
                         "\tmodel")
    held_out = [("best", split, dict(score, method="model"))
                for split, scores in info.final_metrics.items() for score in scores]
    held_out += [("baseline", split, score)
                 for split, scores in info.baselines.items() for score in scores]
    for epoch, split, score in held_out:
        lines.append(f"{epoch}\t{split}\t{score['class']}\t{score['auroc']:.6f}\t{score['auprc']:.6f}\t"
                     f"{score['positives']}\t{score['windows']}\t.\t.\t{score['method']}")
    return "\n".join(lines) + "\n"


def learning_curves_png(info):
    import matplotlib.ticker

    history = info.state["history"]
    epochs = [r["epoch"] for r in history]
    figure, (left, right) = pyplot().subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    left.plot(epochs, [r["valid_loss"] for r in history], "o-", label="valid")
    left.set(xlabel="epoch", ylabel="binary cross-entropy", title="Loss")
    left.legend()
    for i, name in enumerate(info.class_names):
        right.plot(epochs, [r["valid"][i]["auprc"] for r in history], "o-", label=name)
    right.axvline(info.state["best_epoch"], color="grey", linestyle=":", label="best")
    right.set(xlabel="epoch", ylabel="AUPRC (valid)", title="AUPRC per class", ylim=(0, 1))
    right.legend(fontsize=8)
    for axes in (left, right):
        axes.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    figure.tight_layout()
    return figure_bytes(figure)


def report_html(info):
    """A self-contained HTML page: learning curves (embedded PNG), the final metrics, provenance."""
    from html import escape

    facts = {"model": f"{info.model} (width x{info.width_scale})",
             "classes": ", ".join(info.class_names), "window": f"{info.labelled_window} bp"
             + (f" read with {info.flank} bp each side" if info.flank else ""),
             "best epoch": info.state["best_epoch"], "seed": info.seed,
             "train chromosomes": ", ".join(info.split["train"]),
             "valid chromosomes": ", ".join(info.split["valid"]),
             "test chromosomes": ", ".join(info.split["test"]) or "none",
             "versions": ", ".join(f"{k} {v}" for k, v in info.versions.items()),
             "command": info.command}
    facts_rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in facts.items())
    return html_page(f"DeepGMAP training report: {info.model}", f"""<h1>DeepGMAP training report</h1>
<h2>Learning curves</h2>{embedded_png(learning_curves_png(info), "loss and AUPRC per epoch")}
<h2>Best model on held-out chromosomes</h2>
{scores_table(info.final_metrics)}
<h2>Beside baselines that need no training</h2>
{comparison_html(info.final_metrics, info.baselines)}
<h2>Run</h2><table>{facts_rows}</table>""")
