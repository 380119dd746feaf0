"""Fingerprints of the data a model is trained on, so that `--resume` continues only on the data
its checkpoint was trained on.

The windows table: its number of windows and a SHA-256 digest each of its coordinates, its splits
and its labels (of the parsed columns, not of the file's bytes: the same table plain or gzipped
is the same table). The genome: for each chromosome the table uses, its length and a digest of
evenly spaced stretches of its sequence, upper-cased (soft-masking does not change what the model
reads); reading whole chromosomes would take minutes for a human genome.
"""

import hashlib

import numpy as np

SAMPLED_STRETCHES = 32  # per chromosome
STRETCH = 256           # bp


def _digest(*arrays):
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def table_fingerprint(table):
    return {"windows": len(table.starts), "coordinates": _digest(table.chroms, table.starts, table.ends),
            "splits": _digest(table.splits), "labels": _digest(table.labels)}


def sampled_starts(length):
    """Where a chromosome's sampled stretches start: evenly spaced from its first to its last base."""
    last = max(length - STRETCH, 0)
    return sorted({last * i // (SAMPLED_STRETCHES - 1) for i in range(SAMPLED_STRETCHES)})


def genome_fingerprint(genome, chroms):
    """Per chromosome of `chroms`: [length, digest of its sampled stretches]."""
    fingerprint = {}
    for chrom in sorted(chroms):
        length = genome.lengths[chrom]
        digest = hashlib.sha256()
        for start in sampled_starts(length):
            digest.update(genome.fetch(chrom, start, start + STRETCH).upper())
        fingerprint[chrom] = [length, digest.hexdigest()]
    return fingerprint


def training_data_fingerprint(table, genome):
    return {"windows_table": table_fingerprint(table),
            "genome": genome_fingerprint(genome, np.unique(table.chroms).tolist())}


def training_data_differences(saved, current):
    """What differs between two training_data_fingerprint()s, a phrase each."""
    differences = []
    table, wanted = saved["windows_table"], current["windows_table"]
    if table["windows"] != wanted["windows"]:
        differences.append(f"windows table of {table['windows']:,} windows, this run {wanted['windows']:,}")
    else:
        differences += [f"windows table: its {part} differ" for part in ("coordinates", "splits", "labels")
                        if table[part] != wanted[part]]
    sequences, wanted = saved["genome"], current["genome"]
    for chrom in sorted(set(sequences) & set(wanted)):  # the table's differences name the others
        if sequences[chrom][0] != wanted[chrom][0]:
            differences.append(f"genome: {chrom} of {sequences[chrom][0]:,} bp, this run {wanted[chrom][0]:,} bp")
        elif sequences[chrom][1] != wanted[chrom][1]:
            differences.append(f"genome: {chrom}'s sequence differs")
    return differences
