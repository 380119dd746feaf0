"""score-variants on the example genome (real hg19 pieces) and a VCF of SNVs, indels, a REF
mismatch, multi-allelic and symbolic records: windows centred on each allele, values equal to
the model's predictions, every record kept, output read by pysam, bad input in one line."""

import dataclasses
import os
import re

import keras
import numpy as np
import pysam
import pytest

from deepgmap_core.cli.score_variants import main
from deepgmap_core.genome import Genome, one_hot_encode, reverse_complement_one_hot
from deepgmap_core.interpret import class_logits
from deepgmap_core.models.files import load_model
from deepgmap_core.variants import allele_window
from finite_differences import saliency_by_finite_differences

STATUSES = {"ctcf_snv1": "scored", "ctcf_snv2": "scored", "ctcf_snv3": "scored", "insertion": "scored",
            "deletion": "scored", "wrong_ref": "ref_mismatch", "multiallelic": "multiallelic",
            "deletion_sv": "symbolic", "breakend": "symbolic", "chr22_snv": "scored", "chrom_end": "scored",
            "not_in_genome": "chrom_not_in_genome"}


@pytest.fixture(scope="module")
def paths(test_data):
    return {"model": str(test_data / "model.keras"), "genome": str(test_data / "genome.fa.gz"),
            "vcf": str(test_data / "variants.vcf")}


@pytest.fixture(scope="module")
def model(paths):
    return load_model(paths["model"], compile=False)[0]


def score(paths, tmp_path, *extra, vcf=None, output="out.vcf", model=None):
    out = str(tmp_path / output)
    code = main(["--model", model or paths["model"], "--genome", paths["genome"], "--vcf", vcf or paths["vcf"],
                 "-o", out, *extra])
    return code, out


def read_records(path):
    with pysam.VariantFile(path) as vcf:
        return {record.id: record for record in vcf}, vcf.header


def test_each_allele_sits_in_the_middle_of_its_window(paths):
    with Genome(paths["genome"]) as genome:
        reference = genome.fetch("chr20", 1_000_000 - 600, 1_000_000 + 600).upper()
        start = 1_000_000  # 0-based REF start
        snv = allele_window(genome, "chr20", start, 1, "A", 1000)
        insertion = allele_window(genome, "chr20", start, 1, "GTTTA", 1000)
        deletion = allele_window(genome, "chr20", start, 4, "C", 1000)
        # Past the end of the 21 Mb chr22 piece: N.
        at_end = allele_window(genome, "chr22", 21_000_000 - 10, 1, "T", 1000)
    offset = 600  # reference[offset] is the REF base
    assert len(snv) == len(insertion) == len(deletion) == len(at_end) == 1000
    assert snv[:499] == reference[offset - 499:offset] and snv[499:500] == b"A"
    assert snv[500:] == reference[offset + 1:offset + 501]
    assert insertion[497:502] == b"GTTTA" and insertion[:497] == reference[offset - 497:offset]
    assert insertion[502:] == reference[offset + 1:offset + 499]
    assert deletion[499:500] == b"C" and deletion[500:] == reference[offset + 4:offset + 504]
    assert at_end[499:500] == b"T" and b"N" not in at_end[:509] and at_end[509:] == b"N" * 491


def test_values_are_the_models_predictions_and_every_record_is_kept(paths, model, tmp_path):
    code, out = score(paths, tmp_path, "--rc-average", "--tsv", str(tmp_path / "effects.tsv"))
    assert code == 0
    records, header = read_records(out)
    with open(paths["vcf"]) as handle:
        ids = [line.split("\t")[2] for line in handle if not line.startswith("#")]
    assert list(records) == ids
    assert {name: records[name].info["DGM_STATUS"] for name in ids} == STATUSES
    for key in ("DGM_CTCF_REF", "DGM_CTCF_ALT", "DGM_CTCF_DIFF", "DGM_CTCF_LOGOR", "DGM_H3K4me3_LOGOR"):
        assert header.info[key].type == "Float"
    assert records["deletion_sv"].info["SVTYPE"] == "DEL"  # the input's own INFO survives
    assert records["ctcf_snv1"].samples["sample1"]["GT"] == (0, 1)
    with Genome(paths["genome"]) as genome:
        for name in ("ctcf_snv2", "insertion", "deletion", "chrom_end"):
            record = records[name]
            windows = [allele_window(genome, record.chrom, record.start, len(record.ref), allele, 1000)
                       for allele in (record.ref, record.alts[0])]
            x = one_hot_encode(b"".join(windows)).reshape(2, 1000, 4)
            y = (keras.ops.convert_to_numpy(model.predict_on_batch(x))
                 + keras.ops.convert_to_numpy(model.predict_on_batch(reverse_complement_one_hot(x).copy()))) / 2
            for i, cls in enumerate(("CTCF", "H3K4me3")):
                ref, alt = record.info[f"DGM_{cls}_REF"], record.info[f"DGM_{cls}_ALT"]
                assert ref == pytest.approx(y[0, i], abs=2e-6) and alt == pytest.approx(y[1, i], abs=2e-6)
                assert record.info[f"DGM_{cls}_DIFF"] == pytest.approx(alt - ref, abs=2e-6)
                expected = np.log(alt / (1 - alt)) - np.log(ref / (1 - ref))
                assert record.info[f"DGM_{cls}_LOGOR"] == pytest.approx(expected, abs=1e-4)
    for name, status in STATUSES.items():
        assert ("DGM_CTCF_REF" in records[name].info) == (status == "scored")
    rows = [line.rstrip("\n").split("\t") for line in open(tmp_path / "effects.tsv") if not line.startswith("##")]
    assert rows[0][:7] == ["#chrom", "pos", "id", "ref", "alt", "status", "CTCF_ref"]
    assert [row[2] for row in rows[1:]] == ids and all(len(row) == len(rows[0]) for row in rows)


def test_chunks_do_not_change_the_values(paths, model, tmp_path):
    from deepgmap_core.fileio import open_text
    from deepgmap_core.models.files import read_model_info
    from deepgmap_core.settings import VariantSettings
    from deepgmap_core.variants import VcfReader, score_vcf

    outputs = []
    for chunk in (3, 1024):
        with Genome(paths["genome"]) as genome, open_text(paths["vcf"]) as stream, \
                open(tmp_path / f"chunk{chunk}.vcf", "wb") as out:
            score_vcf(VcfReader(stream, paths["vcf"]), model, read_model_info(paths["model"]), genome,
                      VariantSettings(batch_size=5, chunk_records=chunk), out)
        outputs.append((tmp_path / f"chunk{chunk}.vcf").read_text())
    assert outputs[0].count("DGM_STATUS=scored") == 7
    # The same records and fields; the numbers equal to float32 precision (a window predicted in
    # another batch may differ in its last bits, depending on the CPU's kernels).
    number = re.compile(r"-?\d+\.?\d*(?:e[-+]?\d+)?")
    assert number.sub("#", outputs[0]) == number.sub("#", outputs[1])
    values = [[float(value) for value in number.findall(output)] for output in outputs]
    assert values[0] == pytest.approx(values[1], rel=1e-4, abs=1e-5)


def test_probabilities_at_the_genomes_balance_and_log_odds_ratios_unchanged(paths, model, test_data, tmp_path):
    """The example model with the class-balance entry train-model now records (from its own
    windows table, 10% of the negatives kept) against the same model without it."""
    from deepgmap_core.calibration import calibration_entry
    from deepgmap_core.models.files import read_model_info, save_model
    from deepgmap_core.windows import read_windows_table

    table = read_windows_table(str(test_data / "windows.tsv"))
    valid = np.flatnonzero(table.splits == "valid")[:100]
    with Genome(paths["genome"]) as genome:
        x = one_hot_encode(b"".join(genome.fetch(c, s, s + 1000) for c, s in zip(table.chroms[valid],
                                                                                    table.starts[valid].tolist())))
    entry = calibration_entry(table, valid, model.predict(x.reshape(-1, 1000, 4), verbose=0))
    offsets = np.array([c["logit_offset"] for c in entry["classes"]])
    assert offsets[0] < -1 and offsets[1] == 0   # H3K4me3 has no train positive: nothing to correct by
    calibrated = str(tmp_path / "calibrated.keras")
    save_model(model, calibrated, dataclasses.replace(read_model_info(paths["model"]), calibration=entry))
    scored = {}
    for name, path in (("before", paths["model"]), ("after", calibrated)):
        code, out = score(paths, tmp_path, output=f"{name}.vcf", model=path)
        assert code == 0
        scored[name], header = read_records(out)
    assert "probabilities at the genome's class balance" in str(header)
    for name, record in scored["after"].items():
        if record.info["DGM_STATUS"] != "scored":
            continue
        for i, cls in enumerate(("CTCF", "H3K4me3")):
            before = [scored["before"][name].info[f"DGM_{cls}_{key}"] for key in ("REF", "ALT", "LOGOR")]
            shifted = [1 / (1 + np.exp(-(np.log(p / (1 - p)) + offsets[i]))) for p in before[:2]]
            ref, alt = record.info[f"DGM_{cls}_REF"], record.info[f"DGM_{cls}_ALT"]
            assert (ref, alt) == pytest.approx(shifted, rel=1e-4) and (ref < before[0] or i == 1)
            assert record.info[f"DGM_{cls}_DIFF"] == pytest.approx(alt - ref, abs=2e-6)
            assert record.info[f"DGM_{cls}_LOGOR"] == pytest.approx(before[2], abs=1e-4)


def test_bgzip_output_is_indexable_and_ref_mismatch_is_counted(paths, tmp_path, capsys):
    code, out = score(paths, tmp_path, output="out.vcf.gz")
    assert code == 0
    pysam.tabix_index(out, preset="vcf", force=True)
    with pysam.VariantFile(out) as vcf:
        assert [r.id for r in vcf.fetch("chr22")] == ["chr22_snv", "chrom_end"]
    err = capsys.readouterr().err
    assert "12 records: 7 scored" in err and "1 not scored: REF does not match the genome" in err


def test_saliency_at_the_variant_equals_finite_differences(paths, test_data, tmp_path):
    """With the trained CTCF model (the example model's gradients are too small to difference)."""
    ctcf_model = str(test_data / "CTCF_chr20.keras")
    code, out = score(paths, tmp_path, "--saliency-window", "41", model=ctcf_model)
    assert code == 0
    record = read_records(out)[0]["ctcf_snv2"]
    model, info = load_model(ctcf_model, compile=False)
    window = info.window
    with Genome(paths["genome"]) as genome:
        x = one_hot_encode(allele_window(genome, record.chrom, record.start, 1, record.ref, window))[None]
    finite = saliency_by_finite_differences(class_logits(model), x, (window - 1) // 2)
    assert record.info["DGM_CTCF_SAL"] == pytest.approx(finite, rel=1e-2, abs=1e-9)
    rank = record.info["DGM_CTCF_SALRANK"]
    assert 1 / 41 <= rank <= 1 and round(rank * 41) == pytest.approx(rank * 41, abs=1e-3)


def write_vcf(path, rows, header=True):
    lines = ["##fileformat=VCFv4.2", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"] if header else []
    path.write_text("\n".join(lines + ["\t".join(map(str, row)) for row in rows]) + "\n")
    return str(path)


def test_records_outside_the_chromosome_are_kept_unscored(paths, tmp_path):
    with Genome(paths["genome"]) as genome:
        base = genome.fetch("chr20", 2_000_000, 2_000_001).upper().decode()
    rows = [("chr20", 0, "telomere", "N", "A", ".", ".", "."), ("chr20", 4_999_999, "past_end", "AAA", "A", ".", ".", "."),
            ("chr20", 1_000_000, "no_change", "A", "A", ".", ".", "."),
            ("chr20", 2_000_001, "scorable", base, "T" if base != "T" else "A", ".", ".", ".")]  # none scored: an error
    code, out = score(paths, tmp_path, vcf=write_vcf(tmp_path / "edges.vcf", rows))
    assert code == 0
    records, _ = read_records(out)
    assert {name: r.info["DGM_STATUS"] for name, r in records.items()} == {
        "telomere": "outside_chrom", "past_end": "outside_chrom", "no_change": "no_change", "scorable": "scored"}


def test_vcf_of_another_assembly_stops_and_leaves_no_output(paths, tmp_path, capsys):
    with Genome(paths["genome"]) as genome:
        bases = genome.fetch("chr20", 3_000_000, 3_000_200).upper().decode()
    complement = {"A": "C", "C": "G", "G": "T", "T": "A", "N": "A"}
    rows = [("chr20", 3_000_001 + i, f"v{i}", complement[b] if i % 4 else b, "A" if b != "A" else "G", ".", ".", ".")
            for i, b in enumerate(bases[:150])]
    code, out = score(paths, tmp_path, vcf=write_vcf(tmp_path / "other.vcf", rows))
    assert code == 1 and not os.path.exists(out) and not [p for p in os.listdir(tmp_path) if ".part" in p]
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "REF alleles do not match the genome" in err and "another assembly" in err


@pytest.mark.parametrize("rows,header,expected", [
    ([("20", 1_000_000, ".", "A", "G", ".", ".", ".")], True, "which names it 'chr20'"),
    ([("chr20", 1_000_000, ".", "A", "G", ".", ".")], True, "bad.vcf:3: 7 tab-separated columns"),
    ([("chr20", "1e6", ".", "A", "G", ".", ".", ".")], True, "bad.vcf:3: POS '1e6' is not a positive integer"),
    ([("chr20", 1_000_000, ".", "A<", "G", ".", ".", ".")], True, "bad.vcf:3: REF 'A<' is not a DNA sequence"),
    ([], True, "bad.vcf: the VCF has no records"),
    ([("chr20", 1_000_000, ".", "A", "G", ".", ".", ".")], False, "bad.vcf:1: a VCF record before the #CHROM"),
])
def test_bad_vcf_gives_one_line(paths, tmp_path, capsys, rows, header, expected):
    code, out = score(paths, tmp_path, vcf=write_vcf(tmp_path / "bad.vcf", rows, header))
    err = capsys.readouterr().err.strip()
    assert code == 1 and expected in err and err.count("\n") == 0 and "Traceback" not in err
    assert not os.path.exists(out)


def test_empty_vcf_file(paths, tmp_path, capsys):
    (tmp_path / "empty.vcf").write_text("")
    code, _ = score(paths, tmp_path, vcf=str(tmp_path / "empty.vcf"))
    assert code == 1 and "empty VCF" in capsys.readouterr().err


def ctcf_site_scores(sequence, matrix):
    """Log-odds scores of the CTCF matrix (width, 4 in A,C,G,T) at every position of `sequence`
    (bytes), on the + and the - strand; N scores -inf."""
    from deepgmap_core.genome import base_codes

    codes = base_codes(sequence)
    log_odds = np.full((len(matrix), 5), -np.inf)
    log_odds[:, :4] = np.log2(matrix[:, [0, 2, 1, 3]] / 0.25)  # A,C,G,T -> A,G,C,T codes
    # Reverse complement in A,G,C,T codes: reverse the rows, code c -> 3 - c.
    log_odds_minus = np.concatenate([log_odds[::-1, 3::-1], log_odds[::-1, 4:]], axis=1)
    n = len(codes) - len(matrix) + 1
    plus, minus = np.zeros(n, dtype=np.float32), np.zeros(n, dtype=np.float32)
    for k in range(len(matrix)):
        plus += log_odds[k][codes[k:k + n]]
        minus += log_odds_minus[k][codes[k:k + n]]
    return plus, minus


def test_ctcf_motif_variants_change_the_ctcf_prediction_more_than_random_ones(shared_data, test_data, tmp_path):
    """The CTCF model of test-data (conv4-FRSS, width 0.25, trained on hg19 chr20 CTCF windows by
    make_test_data.sh) against SNVs at the most conserved base of the 200 best JASPAR CTCF (C055)
    sites of chr20 and 200 random SNVs of chr20 (a one-sided Mann-Whitney test of |DIFF|)."""
    from scipy.stats import mannwhitneyu

    from deepgmap_core.motifs import read_motif_db

    names, matrices = read_motif_db(str(test_data / "JASPAR2024_CORE_clusters.meme"))
    matrix = matrices[names.index("C055:CTCF:C2H2_ZF")]
    core = int(np.argmax(matrix.max(axis=1)))           # the most conserved column
    least = "ACGT"[int(np.argmin(matrix[core]))]           # its least likely base
    genome_path = str(shared_data / "hg19" / "chr20.fa.gz")
    with Genome(genome_path) as genome:
        sequence = genome.fetch("chr20", 0, genome.lengths["chr20"]).upper()
    plus, minus = ctcf_site_scores(sequence, matrix)
    candidates = np.argsort(-np.maximum(plus, minus))[:5000]
    complement = {"A": "T", "C": "G", "G": "C", "T": "A"}
    sites, taken = [], np.zeros(len(sequence) // 1000 + 1, dtype=bool)
    for start in candidates.tolist():   # the best sites, at most one per kb, away from the ends
        if not taken[start // 1000] and 1000 < start < len(sequence) - 1000:
            taken[start // 1000] = True
            on_plus = bool(plus[start] >= minus[start])
            sites.append((start + core, least) if on_plus else (start + len(matrix) - 1 - core, complement[least]))
            if len(sites) == 200:
                break
    rows = [(position, chr(sequence[position]), alt, "motif") for position, alt in sites]
    rng = np.random.default_rng(7)
    acgt = np.frombuffer(sequence, dtype=np.uint8)
    for position in rng.choice(np.flatnonzero(np.isin(acgt, list(b"ACGT"))[1000:-1000]) + 1000, 200, replace=False):
        ref = chr(sequence[position])
        rows.append((int(position), ref, rng.choice([b for b in "ACGT" if b != ref]), "random"))
    rows.sort()
    vcf = write_vcf(tmp_path / "ctcf.vcf", [("chr20", p + 1, group, ref, alt, ".", ".", ".") for p, ref, alt, group in rows])
    assert main(["--model", str(test_data / "CTCF_chr20.keras"), "--genome", genome_path, "--vcf", vcf,
                 "-o", str(tmp_path / "out.vcf"), "--tsv", str(tmp_path / "out.tsv")]) == 0
    table = [line.rstrip("\n").split("\t") for line in open(tmp_path / "out.tsv") if not line.startswith("#")]
    assert all(row[5] == "scored" for row in table) and len(table) == 400
    diff = {group: np.array([float(row[8]) for row in table if row[2] == group]) for group in ("motif", "random")}
    test = mannwhitneyu(np.abs(diff["motif"]), np.abs(diff["random"]), alternative="greater")
    print(f"CTCF |DIFF|: median {np.median(np.abs(diff['motif'])):.4f} at 200 motif cores vs "
          f"{np.median(np.abs(diff['random'])):.4f} at 200 random SNVs; one-sided Mann-Whitney p = {test.pvalue:.2e}; "
          f"mean DIFF at motif cores {diff['motif'].mean():+.4f}")
    assert test.pvalue < 1e-3
    assert np.median(diff["motif"]) < 0  # breaking the motif lowers the CTCF prediction
