"""Per-base contributions of a model's classes over regions (deepgmap-attribute).

For each region one model window is read around its summit (narrowPeak column 10) or middle,
and every class logit (before the sigmoid) is explained base by base as hypothetical
contributions h[pos, b]: what nucleotide b at pos would contribute. The observed base's
contribution is h[pos, observed] (0 at N), the track a genome browser shows; TF-MoDISco reads
both h and the one-hot sequence. Methods:
- grad-x-input: the gradient minus its mean over the four nucleotides (Majdandzic et al. 2023;
  see interpret.py), one backward pass per class;
- integrated-gradients (Sundararajan et al. 2017): from references r (the window's bases
  shuffled, or random bases at its G+C fraction; seeded) to x in `steps` midpoint steps; with g
  the mean gradient on that path, h[pos, b] = g[pos, b] - r[pos] . g[pos], so the observed
  contributions add up to logit(x) - logit(r) (completeness: its error is measured and
  reported), averaged over the references;
- ism: the logit with b at pos (in-silico saturation mutagenesis) minus its mean over the four
  nucleotides, exact and about 3 model runs per base.
A model trained on both strands (rc_average in its file) is explained as it predicts: the mean
of the logits of the window and of its reverse complement.
Keras is imported where it is used: the command line parses and checks its inputs first.
"""

from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .genome import one_hot_windows
from .progress import ProgressBar

ATTRIBUTION_METHODS = ("grad-x-input", "integrated-gradients", "ism")
REFERENCES = ("shuffle", "gc")
FORMAT = "deepgmap-attributions/1"


@dataclass
class AttributionSettings:
    method: str = "grad-x-input"
    steps: int = 32
    references: int = 4
    reference: str = "shuffle"
    batch_size: int = 64
    seed: int = 0

    def check(self):
        if self.method not in ATTRIBUTION_METHODS:
            raise InputError(f"method must be one of {', '.join(ATTRIBUTION_METHODS)}, got {self.method!r}")
        if self.reference not in REFERENCES:
            raise InputError(f"reference must be one of {', '.join(REFERENCES)}, got {self.reference!r}")
        if min(self.steps, self.references, self.batch_size) < 1:
            raise InputError("steps, references and batch size must be >= 1")


@dataclass
class Regions:
    """Model windows around regions, sorted by chromosome (genome order) and start."""

    chroms: np.ndarray
    starts: np.ndarray  # window starts
    window: int
    lines: np.ndarray   # the source line of each region


def region_windows_around(peak_set, genome, window, chroms=None):
    """Regions of `peak_set` (on `chroms` when given) as model windows centred on their summits
    (narrowPeak) or middles, moved inside the chromosome where they would leave it, sorted by
    chromosome (genome order) and window start. InputError for a chromosome the genome lacks or
    shorter than the window, or when no region is left."""
    order = {name: i for i, name in enumerate(genome.names)}
    for chrom, intervals in peak_set.by_chrom.items():
        if chrom not in order:
            raise InputError(f"{peak_set.path}:{intervals.lines[0]}: chromosome {chrom} is not in the genome "
                             f"({', '.join(genome.names[:3])}{', ...' if len(genome.names) > 3 else ''})")
        if genome.lengths[chrom] < window:
            raise InputError(f"{peak_set.path}:{intervals.lines[0]}: {chrom} ({genome.lengths[chrom]:,} bp) is "
                             f"shorter than the model's {window} bp window")
    kept = sorted((c for c in peak_set.by_chrom if chroms is None or c in chroms), key=order.get)
    if not kept:
        raise InputError(f"{peak_set.path}: no region on {', '.join(sorted(chroms))} (--chroms)")
    chrom_column = np.concatenate([np.full(len(peak_set.by_chrom[c].starts), c, dtype=object) for c in kept])
    starts = np.concatenate([np.clip(peak_set.by_chrom[c].summits - window // 2, 0, genome.lengths[c] - window)
                             for c in kept]).astype(np.int64)
    lines = np.concatenate([peak_set.by_chrom[c].lines for c in kept])
    # Records come sorted by start, their summits need not be: the tracks are written in window order.
    rank = np.repeat(np.arange(len(kept)), [len(peak_set.by_chrom[c].starts) for c in kept])
    order = np.lexsort((starts, rank))
    return Regions(chrom_column[order].astype(str), starts[order], window, lines[order])


def strand_logits(model, both_strands):
    """x -> class logits, the mean over both strands when the model predicts that way."""
    from keras import ops

    from .interpret import class_logits

    logits = class_logits(model)
    if not both_strands:
        return logits

    return lambda x: (logits(x) + logits(ops.flip(x, axis=(1, 2)))) / 2


def references_for(x, settings, rng):
    """(k, n, window, 4) references for one-hot windows x: each window's bases in a random order
    (same composition), or random bases at its G+C fraction (A,G,C,T order: G and C are 1, 2)."""
    n, window, _ = x.shape
    if settings.reference == "shuffle":
        order = rng.permuted(np.broadcast_to(np.arange(window), (settings.references, n, window)), axis=2)
        return x[np.arange(n)[None, :, None], order]
    gc = x[:, :, 1:3].sum(axis=(1, 2)) / np.maximum(x.sum(axis=(1, 2)), 1)
    probabilities = np.stack([(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2], axis=1)  # (n, 4)
    draws = rng.random((settings.references, n, window, 1))
    bases = (draws > np.cumsum(probabilities, axis=1)[None, :, None, :]).sum(axis=-1)
    return np.eye(4, dtype=x.dtype)[np.minimum(bases, 3)]


def _batched(function, inputs, batch_size):
    return np.concatenate([np.asarray(function(inputs[lo:lo + batch_size]))
                           for lo in range(0, len(inputs), batch_size)])


def integrated_gradients(class_gradient, x, references, end_logits, steps, batch_size):
    """(hypothetical contributions (n, window, 4) averaged over the references, (2, k, n): the
    completeness errors, sum of observed contributions - (logit(x) - logit(r)), and logit(x) - logit(r)).
    `end_logits` (k + 1, n): the class logit of x, then of each reference."""
    k = len(references)
    alphas = ((np.arange(steps) + 0.5) / steps).astype(x.dtype)
    # Every (reference, alpha) point of every window, in batches: (k * steps * n, window, 4).
    path = references[:, None] + alphas[None, :, None, None, None] * (x - references)[:, None]
    grads = _batched(class_gradient, path.reshape(-1, *x.shape[1:]), batch_size)
    grads = grads.reshape(k, steps, *x.shape).mean(axis=1)
    hypothetical = grads - np.einsum("knwb,knwb->knw", references, grads)[..., None]
    observed_sum = np.einsum("knwb,knwb->kn", x[None] - references, grads)
    difference = end_logits[0][None] - end_logits[1:]
    return hypothetical.mean(axis=0), np.stack([observed_sum - difference, difference])


class Attributor:
    """Hypothetical contributions of one model by one method, batch after batch (its gradients
    compiled once)."""

    def __init__(self, model, settings, both_strands=False):
        from .interpret import compiled_function, gradient_function

        settings.check()
        self.model, self.settings = model, settings
        self.logits = strand_logits(model, both_strands)
        self.compiled_logits = compiled_function(self.logits)
        self.class_gradients = [gradient_function(lambda inputs, c=c: self.logits(inputs)[:, c])
                                for c in range(model.output_shape[-1])]

    def __call__(self, x, rng=None):
        """(hypothetical contributions (n, window, 4, classes), completeness (2, k, n, classes) or
        None: see integrated_gradients) of one-hot windows x (n, window, 4) (see the module's docstring)."""
        from .interpret import mutant_logits

        settings = self.settings
        if settings.method == "ism":
            values = mutant_logits(self.model, x, settings.batch_size, self.compiled_logits)
            return values - values.mean(axis=2, keepdims=True), None
        if settings.method == "grad-x-input":
            grads = np.stack([class_gradient(x) for class_gradient in self.class_gradients], axis=-1)
            return grads - grads.mean(axis=2, keepdims=True), None
        references = references_for(x, settings, rng)
        end_points = np.concatenate([x[None], references]).reshape(-1, *x.shape[1:])
        end_logits = _batched(self.compiled_logits, end_points, settings.batch_size).reshape(
            len(references) + 1, len(x), -1)  # every class's at once
        parts = [integrated_gradients(class_gradient, x, references, end_logits[..., c], settings.steps,
                                      settings.batch_size) for c, class_gradient in enumerate(self.class_gradients)]
        return np.stack([p[0] for p in parts], axis=-1), np.stack([p[1] for p in parts], axis=-1)


def observed(hypothetical, x):
    """The observed base's contribution (n, window, classes): 0 at N."""
    return np.einsum("nwbc,nwb->nwc", hypothetical, x)


class ContributionTracks:
    """One bigWig per class of the observed-base contributions, windows given in genome order;
    where windows overlap, the bases get the mean of the windows over them."""

    def __init__(self, paths, chrom_sizes):
        from .tracks import BigWigWriter

        self.handles = [BigWigWriter(path, chrom_sizes) for path in paths]
        self.pending = None  # [chrom, start, end, [(start, values (window, classes))]]

    def add(self, chroms, starts, values):
        for chrom, start, window_values in zip(chroms, starts.tolist(), values):
            end = start + len(window_values)
            if self.pending and self.pending[0] == chrom and start < self.pending[2]:
                self.pending[2] = max(self.pending[2], end)
                self.pending[3].append((start, window_values))
            else:
                self._flush()
                self.pending = [chrom, start, end, [(start, window_values)]]

    def _flush(self):
        if self.pending is None:
            return
        chrom, first, last, pieces = self.pending
        sums = np.zeros((last - first, pieces[0][1].shape[1]))
        counts = np.zeros(last - first)
        for start, window_values in pieces:
            sums[start - first:start - first + len(window_values)] += window_values
            counts[start - first:start - first + len(window_values)] += 1
        means = sums / counts[:, None]
        for i, handle in enumerate(self.handles):
            handle.add_entries(chrom, first, values=means[:, i].tolist(), span=1, step=1)
        self.pending = None

    def close(self):
        self._flush()
        for handle in self.handles:
            handle.close()


def write_attributions(model, genome, regions, class_names, settings, h5_path=None, track_paths=None,
                       provenance=None, both_strands=False, modisco_class=0):
    """Attribute every window of `regions`, batch by batch (memory flat in their number), into
    an HDF5 file for motif discovery and/or one bigWig per class. Returns the completeness of
    integrated gradients ((2, k, n, classes): errors and logit differences) or None.

    The HDF5 file (`FORMAT`): input_seqs (n, window, 4) and hypothetical_contributions/<class>
    (n, window, 4), both in A,C,G,T order as TF-MoDISco reads them, hyp_scores a link to the
    class for `modisco motifs -i`, the windows (chrom, start, end) and the provenance."""
    import h5py

    from .motifs import MEME_ORDER

    attributor = Attributor(model, settings, both_strands)  # checks the settings before any file is made
    rng = np.random.default_rng(settings.seed)
    n, window = len(regions.starts), regions.window
    completeness = []
    tracks = ContributionTracks(track_paths, genome.lengths) if track_paths else None
    store = h5py.File(h5_path, "w") if h5_path else None
    try:
        if store is not None:
            shape, chunks = (n, window, 4), (min(n, 64), window, 4)
            sequences = store.create_dataset("input_seqs", shape, "f4", chunks=chunks, compression="gzip")
            hypothetical_sets = [store.create_dataset(f"hypothetical_contributions/{name}", shape, "f4", chunks=chunks,
                                                      compression="gzip") for name in class_names]
            store["hyp_scores"] = hypothetical_sets[modisco_class]
            store.create_dataset("windows/chrom", data=regions.chroms.astype("S"))
            store.create_dataset("windows/start", data=regions.starts)
            store.create_dataset("windows/end", data=regions.starts + window)
            store.attrs.update({"format": FORMAT, "alphabet": "ACGT", "class_names": list(class_names),
                                "modisco_class": class_names[modisco_class], **(provenance or {})})
        step = max(1, settings.batch_size // (settings.steps * settings.references)) \
            if settings.method == "integrated-gradients" else settings.batch_size
        with ProgressBar(n, f"attributing ({settings.method})", "regions") as bar:
            for lo in range(0, n, step):
                hi = min(lo + step, n)
                x = one_hot_windows(genome, regions.chroms[lo:hi], regions.starts[lo:hi], window)
                hypothetical, batch_completeness = attributor(x, rng)
                if batch_completeness is not None:
                    completeness.append(batch_completeness)
                if tracks is not None:
                    tracks.add(regions.chroms[lo:hi], regions.starts[lo:hi], observed(hypothetical, x))
                if store is not None:
                    sequences[lo:hi] = x[:, :, MEME_ORDER]
                    for i, dataset in enumerate(hypothetical_sets):
                        dataset[lo:hi] = hypothetical[:, :, MEME_ORDER, i]
                bar.update(hi - lo)
        completeness = np.concatenate(completeness, axis=2) if completeness else None
        if store is not None and completeness is not None:
            store.attrs.update(completeness_error_median=float(np.median(np.abs(completeness[0]))),
                               logit_difference_median=float(np.median(np.abs(completeness[1]))))
    finally:
        if tracks is not None:
            tracks.close()
        if store is not None:
            store.close()
    return completeness


def read_attributions(path, class_name=None):
    """(one-hot (n, window, 4), hypothetical contributions (n, window, 4), both A,C,G,T; chroms,
    window starts, attributes) of one class of a file from write_attributions; InputError for any
    other file or class."""
    import h5py

    from .fileio import check_readable

    check_readable(path, "attributions file")
    try:
        store = h5py.File(path, "r")
    except OSError:
        raise InputError(f"{path}: not an HDF5 file (deepgmap-attribute writes one)") from None
    with store:
        attributes = dict(store.attrs)
        if attributes.get("format") != FORMAT:
            raise InputError(f"{path}: not a deepgmap-attribute file (format {attributes.get('format')!r}, "
                             f"expected {FORMAT})")
        for key in ("class_names", "modisco_class"):
            if key not in attributes:
                raise InputError(f"{path}: no {key} attribute (deepgmap-attribute writes one)")
        names = [str(name) for name in attributes["class_names"]]
        name = class_name or str(attributes["modisco_class"])
        if name not in names:
            raise InputError(f"{path}: no class {name!r}; its classes are {', '.join(names)}")
        one_hot = _checked_dataset(store, path, "input_seqs", (None, None, 4), "f")
        n, window = one_hot.shape[:2]
        if n == 0 or window == 0:
            raise InputError(f"{path}: dataset input_seqs holds no windows ({one_hot.shape})")
        return (one_hot, _checked_dataset(store, path, f"hypothetical_contributions/{name}", (n, window, 4), "f"),
                _checked_dataset(store, path, "windows/chrom", (n,), "S"),
                _checked_dataset(store, path, "windows/start", (n,), "i"), attributes)


def _checked_dataset(store, path, name, shape, kind):
    """The values of dataset `name` of an attributions file, checked as write_attributions writes
    it: its `shape` (None: any length there) and `kind` of values ("f": finite numbers (one NaN
    made TF-MoDISco fail with a ValueError), "i": whole numbers >= 0, "S": text, returned as str);
    InputError naming the file and the dataset otherwise."""
    import h5py

    dataset = store.get(name)
    if not isinstance(dataset, h5py.Dataset):
        raise InputError(f"{path}: no dataset {name} (deepgmap-attribute writes one)")
    if len(dataset.shape) != len(shape) or any(length not in (None, got) for got, length in zip(dataset.shape, shape)):
        wanted = ", ".join("*" if length is None else str(length) for length in shape)
        raise InputError(f"{path}: dataset {name} has shape {dataset.shape}, expected ({wanted})")
    is_text = h5py.check_string_dtype(dataset.dtype) is not None
    if is_text != (kind == "S") or not is_text and dataset.dtype.kind not in {"f": "fiu", "i": "iu"}[kind]:
        raise InputError(f"{path}: dataset {name} holds {dataset.dtype}, not "
                         f"{dict(f='numbers', i='whole numbers', S='text')[kind]}")
    if is_text:
        return dataset.asstr()[()].astype(str)
    values = dataset[()]
    bad = ~np.isfinite(values) if kind == "f" else values < 0
    if bad.any():
        raise InputError(f"{path}: dataset {name} holds {int(bad.sum()):,} value(s) that are "
                         f"{'NaN or infinite' if kind == 'f' else 'negative'}")
    return values


def default_chroms(info):
    """The model's held-out chromosomes (test, else valid split), where its contributions are not
    those of sequences it was fitted to."""
    held_out = list(info.split.get("test", [])) or list(info.split.get("valid", []))
    if not held_out:
        raise InputError("the model file names no held-out chromosomes: give --chroms all or a list")
    return set(held_out)
