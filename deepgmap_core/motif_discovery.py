"""Motifs from contribution scores: TF-MoDISco (modisco-lite) on the output of deepgmap-attribute.

TF-MoDISco cuts seqlets (stretches of high total contribution) out of the observed-base
contributions, clusters them on their hypothetical contributions and aggregates each cluster
into a pattern: a position probability matrix of its seqlets' bases (PPM) and their mean
contributions (CWM). Positive patterns raise the class logit, negative ones lower it. As in
modisco-lite's own report, a pattern is trimmed to the positions whose summed absolute
contribution reaches 0.3 of its highest; the trimmed PPM is the motif written and matched.
"""

from dataclasses import dataclass

import numpy as np

from .errors import InputError

TRIM_FRACTION = 0.3
EXAMPLE_SEQLETS = 5


@dataclass
class DiscoverySettings:
    width: int = 0              # the central bases of each window given to TF-MoDISco (0: all)
    max_seqlets: int = 2000     # per metacluster (positive, negative)
    sliding_window: int = 21    # bp summed to find seqlets
    flank: int = 10             # bp added each side of a seqlet
    min_seqlets: int = 20       # the fewest seqlets of a pattern, and of a metacluster to cluster

    def check(self, window):
        if self.width > window:
            raise InputError(f"--width {self.width} is longer than the attributed windows ({window} bp)")
        if self.sliding_window + 2 * self.flank > (self.width or window):
            raise InputError(f"seqlets of {self.sliding_window} + 2 x {self.flank} bp do not fit in "
                             f"{self.width or window} bp")


@dataclass
class Pattern:
    name: str           # pos_pattern_1, neg_pattern_1, ... (TF-MoDISco's order: most seqlets first)
    ppm: np.ndarray     # (width, 4) A,C,G,T, trimmed
    cwm: np.ndarray     # (width, 4) mean contributions, trimmed
    seqlets: list       # (window index, start, end, reverse strand, summed contribution) in the given windows


def central_offset(window, width):
    return (window - width) // 2 if width else 0


def discover_patterns(one_hot, hypothetical, settings):
    """Patterns of one class from one-hot windows and their hypothetical contributions (n, window, 4),
    A,C,G,T order; none when too few seqlets are found to cluster."""
    import modiscolite

    window = one_hot.shape[1]
    settings.check(window)
    lo = central_offset(window, settings.width)
    hi = lo + (settings.width or window)
    positive, negative = modiscolite.tfmodisco.TFMoDISco(
        one_hot=np.ascontiguousarray(one_hot[:, lo:hi], dtype=np.float32),
        hypothetical_contribs=np.ascontiguousarray(hypothetical[:, lo:hi], dtype=np.float32),
        sliding_window_size=settings.sliding_window, flank_size=settings.flank,
        min_metacluster_size=settings.min_seqlets, final_min_cluster_size=settings.min_seqlets,
        max_seqlets_per_metacluster=settings.max_seqlets)
    return [trimmed_pattern(f"{sign}_pattern_{i + 1}", pattern)
            for sign, found in (("pos", positive), ("neg", negative)) for i, pattern in enumerate(found or [])]


def trimmed_pattern(name, pattern):
    score = np.abs(pattern.contrib_scores).sum(axis=1)
    kept = np.flatnonzero(score >= TRIM_FRACTION * score.max())
    first, last = kept[0], kept[-1] + 1
    seqlets = [(s.example_idx, s.start, s.end, bool(s.is_revcomp), float(np.sum(s.contrib_scores)))
               for s in pattern.seqlets]
    return Pattern(name, pattern.sequence[first:last], pattern.contrib_scores[first:last], seqlets)


def seqlet_bed_rows(patterns, chroms, window_starts, offset):
    """BED6 rows (chrom, start, end, pattern, score, strand) of every seqlet, genome coordinates:
    window start + `offset` (the central crop) + the seqlet's start in it."""
    rows = []
    for pattern in patterns:
        for index, start, end, reverse, score in pattern.seqlets:
            base = int(window_starts[index]) + offset
            rows.append((str(chroms[index]), base + start, base + end, pattern.name, score, "-" if reverse else "+"))
    return sorted(rows)


def _bases(one_hot_rows):
    """The bases of one-hot rows (A,C,G,T; all zeros: N) as text."""
    return "".join(np.where(one_hot_rows.any(axis=1), np.array(list("ACGT"))[one_hot_rows.argmax(axis=1)], "N"))


def patterns_html(patterns, matches, chroms, window_starts, offset, one_hot, title):
    """A self-contained page: per pattern its contribution logo (CWM) and PWM logo, seqlet count,
    best Tomtom matches with q-values, and example seqlets with their coordinates and bases.
    `matches`: pattern name -> Tomtom rows (best first)."""
    from html import escape

    from .motifs import logo_png, probability_logo_png
    from .reports import embedded_png as image
    from .reports import html_page

    sections = []
    for pattern in patterns:
        rows = "".join(f"<tr><td>{escape(target)}</td><td>{p:.2g}</td><td>{q:.2g}</td><td>{strand}</td></tr>"
                       for _, target, p, _, q, _, strand in matches.get(pattern.name, []))
        examples = []
        for index, start, end, reverse, score in pattern.seqlets[:EXAMPLE_SEQLETS]:
            base = int(window_starts[index]) + offset
            seq = one_hot[index, offset + start:offset + end]
            bases = _bases(seq[::-1, ::-1] if reverse else seq)
            examples.append(f"<tr><td>{escape(str(chroms[index]))}:{base + start + 1:,}-{base + end:,} "
                            f"({'-' if reverse else '+'})</td><td>{score:.3g}</td><td><code>{bases}</code></td></tr>")
        sections.append(
            f"<h2>{escape(pattern.name)}: {len(pattern.seqlets)} seqlets, {len(pattern.ppm)} bp</h2>"
            f"<p>{image(logo_png(pattern.cwm, pattern.name + ' contributions', 'contribution'), 'CWM')}<br>"
            f"{image(probability_logo_png(pattern.ppm, pattern.name + ' PWM'), 'PWM')}</p>"
            + (f"<table><tr><th>best matches</th><th>p</th><th>q</th><th>strand</th></tr>{rows}</table>"
               if rows else "<p>no motif database given</p>")
            + "<table><tr><th>example seqlet (1-based)</th><th>contribution</th><th>bases</th></tr>"
            + "".join(examples) + "</table>")
    if not sections:
        sections.append("<p>No pattern: too few seqlets to cluster (more regions, or a lower --min-seqlets).</p>")
    return html_page(title, f"<h1>{escape(title)}</h1>" + "".join(sections))
