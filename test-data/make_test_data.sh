#!/usr/bin/env bash
# Cut the example data in this folder from the real data in ../shared/data (see README.md).
# Run from this folder; needs samtools and bgzip (htslib). Not needed to use the suite.
set -euo pipefail
DATA=${1:-../../shared/data}/hg19
{
  samtools faidx "$DATA/chr20.fa.gz" chr20:1-5000000 | sed '1s/.*/>chr20 hg19 chr20:1-5000000/'
  samtools faidx "$DATA/chr22.fa.gz" chr22:1-21000000 | sed '1s/.*/>chr22 hg19 chr22:1-21000000/'
} | bgzip -c > genome.fa.gz
samtools faidx genome.fa.gz
# The Galaxy tests' genome: the same chromosomes and lengths (so every table and model here fits it) with
# N outside the stretches the tests read (chr20's variants, regions and some training windows; chr22's held-out
# megabase), so that each Tool Shed repository's test data stays under 1 MiB.
python3 - <<'PY'
import gzip
KEPT = {"chr20": [(0, 250_000), (1_490_000, 2_010_000)], "chr22": [(20_000_000, 21_000_000)]}
records = gzip.open("genome.fa.gz", "rt").read().split(">")[1:]
with open("genome_masked.fa", "w") as out:
    for record in records:
        header, *rows = record.splitlines()
        seq, kept, masked, end = "".join(rows), KEPT[header.split()[0]], "", 0
        for start, stop in kept:
            masked, end = masked + "N" * (start - end) + seq[start:stop], stop
        masked += "N" * (len(seq) - end)
        header += ", N outside " + ", ".join(f"{start:,}-{stop:,}" for start, stop in kept)
        out.write(f">{header}\n" + "".join(masked[i:i + 60] + "\n" for i in range(0, len(masked), 60)))
PY
bgzip -f genome_masked.fa
samtools faidx genome_masked.fa.gz
awk -v OFS='\t' '($1=="chr20" && $3<=5000000) || ($1=="chr22" && $2>=20000000 && $3<=21000000)' \
  "$DATA/CTCF.chr20.bed" "$DATA/CTCF.chr22.bed" > CTCF.bed
# MACS 1.4 peaks.xls -> narrowPeak: 1-based start -> 0-based; score = min(1000, -10log10 p);
# pValue = -log10 p; qValue = -log10(FDR%/100) (0 when FDR is 100%); summit = MACS's offset.
awk -v OFS='\t' '$1=="chr22" && $2>=20000000 && $3<=21000000 {
  n++; score = int($7); if (score > 1000) score = 1000
  q = ($9 > 0 && $9 < 100) ? -log($9 / 100) / log(10) : 0
  printf "%s\t%d\t%d\tH3K4me3_peak_%d\t%d\t.\t%s\t%.2f\t%.2f\t%d\n", $1, $2 - 1, $3, n, score, $8, $7 / 10, q, $5
}' "$DATA/K562_H3K4me3.chr22.macs1_peaks.xls" > H3K4me3.narrowPeak
awk -v OFS='\t' '($1=="chr20" && $2<5000000) || ($1=="chr22" && $2<21000000)' "$DATA/hg19-blacklist.v2.bed" > blacklist.bed
# ENCODE K562 H3K4me3 reads on the real chr22 piece (the BAM header keeps chr22's full length).
samtools view -b -o K562_H3K4me3.chr22_20M.bam "$DATA/K562_H3K4me3.chr22.bam" chr22:20000000-21000000
samtools index K562_H3K4me3.chr22_20M.bam
# Training windows for the train-model tests: chr20 train, chr22 valid.
../.venv/bin/deepgmap-make-training-windows --genome genome.fa.gz --peaks CTCF.bed H3K4me3.narrowPeak \
  --blacklist blacklist.bed --valid-chroms chr22 --keep-negatives 0.1 --seed 1 -o windows.tsv
without_optimizer() {  # copy a model file without its optimizer state (a smaller file)
  ../.venv/bin/python - "$1" "$2" <<'PY'
import sys
from deepgmap_core.models.files import load_model, save_model
model, info = load_model(sys.argv[1], compile=False)
save_model(model, sys.argv[2], info)
PY
}
# A small conv4-FRSS model for the predict-bigwig tests.
../.venv/bin/deepgmap-train-model --genome genome.fa.gz --windows windows.tsv --model conv4-frss --width-scale 0.1 \
  --epochs 1 --steps-per-epoch 20 --batch-size 50 --max-valid-windows 500 --seed 1 -o model.keras
without_optimizer model.keras model.keras
# For the Galaxy tests of train-model, predict-bigwig and score-variants (the Tool Shed takes 1 MiB of test data
# per repository): the windows of the masked genome, and a smaller model of the same classes (the default
# conv3-FRSS-BN, its global max-pool making it a tenth of model.keras).
../.venv/bin/deepgmap-make-training-windows --genome genome_masked.fa.gz --peaks CTCF.bed H3K4me3.narrowPeak \
  --blacklist blacklist.bed --valid-chroms chr22 --keep-negatives 0.1 --seed 1 -o windows_masked.tsv
../.venv/bin/deepgmap-train-model --genome genome.fa.gz --windows windows.tsv --model conv3-frss-bn --width-scale 0.1 \
  --epochs 1 --steps-per-epoch 20 --batch-size 50 --max-valid-windows 500 --seed 1 -o model_small.keras
without_optimizer model_small.keras model_small.keras
# The merge-bigwigs Galaxy test: that model's tracks over regions.bed from one job per chromosome,
# and from one job over both (what the merge must give).
for part in chr20 chr22 all; do
  chroms=$([ "$part" = all ] || echo "--chroms $part")
  ../.venv/bin/deepgmap-predict-bigwig --model model.keras --genome genome.fa.gz --regions regions.bed $chroms \
    --outdir "tracks.$part"
  for class in CTCF H3K4me3; do
    mv "tracks.$part/$class.bw" "tracks_${part}_$class.bw"
  done
  rmdir "tracks.$part"
done
mv tracks_all_CTCF.bw tracks_CTCF.bw
mv tracks_all_H3K4me3.bw tracks_H3K4me3.bw
# Yeast ATAC-seq for the Galaxy workflow test: sacCer3 chrIV:1-400,000 and chrV:1-330,000 (names
# and coordinates kept), and the NucleoATAC example read pairs there, split by fragment length into
# nucleosome-free (< 100 bp) and mono-nucleosome (180-250 bp) fragments, plus 3% of all pairs as a
# library too shallow to pass QC. Read names shortened, sequences and tags dropped (peak calling
# and QC use positions only).
../.venv/bin/python - "${1:-../../shared/data}/sacCer3" <<'PY'
import sys, zlib
import pysam
data = sys.argv[1]
pieces = [("chrIV", 400_000), ("chrV", 330_000)]
with pysam.FastaFile(f"{data}/sacCer3.fa.gz") as fasta, open("yeast.fa", "w") as out:
    for chrom, end in pieces:
        seq = fasta.fetch(chrom, 0, end)
        out.write(f">{chrom}\n" + "".join(seq[i:i + 60] + "\n" for i in range(0, end, 60)))
pysam.tabix_compress("yeast.fa", "yeast.fa.gz", force=True)
pysam.faidx("yeast.fa.gz")
def cut(name, keep):
    with pysam.AlignmentFile(f"{data}/ATAC.example.bam") as bam, \
            pysam.AlignmentFile(name, "wb", header=bam.header) as out:
        names = {}
        for chrom, end in pieces:
            for read in bam.fetch(chrom, 0, end):
                if read.next_reference_name == chrom and read.next_reference_start < end and keep(read):
                    read.query_name = names.setdefault(read.query_name, f"p{len(names)}")
                    read.query_sequence = None
                    read.set_tags([])
                    out.write(read)
    pysam.index(name)
cut("yeast_ATAC_NFR.bam", lambda read: abs(read.template_length) < 100)
cut("yeast_ATAC_nucleosome.bam", lambda read: 180 <= abs(read.template_length) <= 250)
cut("yeast_ATAC_shallow.bam", lambda read: zlib.crc32(read.query_name.encode()) % 100 < 3)
PY
rm yeast.fa
# A VCF for the score-variants tests: SNVs at CTCF regions, an insertion, a deletion, a REF mismatch,
# a multi-allelic record, two structural variants, one whose window runs past the end of chr22's piece, one on a
# chromosome the genome lacks.
../.venv/bin/python - <<'PY'
import pysam
fa = pysam.FastaFile("genome.fa.gz")
def base(chrom, pos, n=1):
    return fa.fetch(chrom, pos - 1, pos - 1 + n).upper()
ctcf = [l.split() for l in open("CTCF.bed")][:3]
mid = [(c, (int(s) + int(e)) // 2) for c, s, e in ctcf]
other = {"A": "G", "C": "T", "G": "A", "T": "C"}
rows = []
def add(chrom, pos, vid, ref, alt, info="DP=30"):
    rows.append(f"{chrom}\t{pos}\t{vid}\t{ref}\t{alt}\t50\tPASS\t{info}\tGT\t0/1")
for i, (c, p) in enumerate(mid):
    add(c, p, f"ctcf_snv{i + 1}", base(c, p), other[base(c, p)])
add("chr20", 1500000, "insertion", base("chr20", 1500000), base("chr20", 1500000) + "AC")
add("chr20", 1600000, "deletion", base("chr20", 1600000, 4), base("chr20", 1600000))
r = base("chr20", 1700000)
add("chr20", 1700000, "wrong_ref", other[r], r)
add("chr20", 1800000, "multiallelic", base("chr20", 1800000), ",".join(b for b in "ACGT" if b != base("chr20", 1800000))[:3])
add("chr20", 1900000, "deletion_sv", base("chr20", 1900000), "<DEL>", "SVTYPE=DEL;END=1901000")
add("chr20", 2000000, "breakend", base("chr20", 2000000), base("chr20", 2000000) + "]chr22:20500000]", "SVTYPE=BND")
add("chr22", 20100000, "chr22_snv", base("chr22", 20100000), other[base("chr22", 20100000)])
add("chr22", 20999900, "chrom_end", base("chr22", 20999900), other[base("chr22", 20999900)], ".")
add("chrX", 1000000, "not_in_genome", "A", "G")
header = ["##fileformat=VCFv4.2", "##source=DeepGMAP test-data/make_test_data.sh",
          "##reference=genome.fa.gz", '##INFO=<ID=DP,Number=1,Type=Integer,Description="Read depth">',
          '##INFO=<ID=SVTYPE,Number=1,Type=String,Description="Type of structural variant">',
          '##INFO=<ID=END,Number=1,Type=Integer,Description="End position of the variant">',
          '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
          "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tsample1"]
open("variants.vcf", "w").write("\n".join(header + rows) + "\n")
PY
# A CTCF model on real data for the score-variants and motif-extract tests: conv4-FRSS at width 0.25 on hg19
# chr20 CTCF windows of 200 bp (stride 100, 8% of the negatives kept; chr22's real piece held out), Adam 1e-3,
# batches of 32, 40 epochs of 300 steps (about 25 minutes on 2 CPU cores; the best epoch by valid AUPRC is
# kept). The optimizer state is dropped to keep the file small. The shipped file predates the fidelity fix of
# issue 13 (its convolutions have biases, which old model files keep); rerunning this gives a model of the new
# default recipe, not the same file.
work=$(mktemp -d)
(zcat "$DATA/chr20.fa.gz"; zcat "$DATA/chr22.fa.gz") > "$work/genome.fa"
cat "$DATA/CTCF.chr20.bed" "$DATA/CTCF.chr22.bed" > "$work/CTCF.bed"
../.venv/bin/deepgmap-make-training-windows --genome "$work/genome.fa" --peaks "$work/CTCF.bed" --names CTCF \
  --blacklist "$DATA/hg19-blacklist.v2.bed" --valid-chroms chr22 --window 200 --stride 100 --keep-negatives 0.08 \
  --seed 1 -o "$work/windows.tsv"
../.venv/bin/deepgmap-train-model --genome "$work/genome.fa" --windows "$work/windows.tsv" --model conv4-frss \
  --width-scale 0.25 --epochs 40 --steps-per-epoch 300 --batch-size 32 --learning-rate 1e-3 --patience 0 \
  --max-valid-windows 3000 --seed 1 -o "$work/model.keras"
without_optimizer "$work/model.keras" CTCF_chr20.keras
# The demo's predicting model: the default model (conv3-FRSS-BN) at width 0.25 and the default recipe, on the
# 200 bp windows above (its global max-pool then reads the demo's 1 kb windows too), for a budget of 20 minutes
# on 2 CPU cores; the best epoch by valid AUPRC is kept.
../.venv/bin/deepgmap-train-model --genome "$work/genome.fa" --windows "$work/windows.tsv" --width-scale 0.25 \
  --max-minutes 20 --epochs 1000 --steps-per-epoch 1500 --patience 0 --motif-db JASPAR2024_CORE_clusters.meme \
  --seed 1 -o "$work/model_frss_bn.keras"
without_optimizer "$work/model_frss_bn.keras" CTCF_chr20_frss_bn.keras
rm -r "$work"
# Input of the discover-motifs Galaxy test: grad-x-input contributions of CTCF_chr20.keras over its held-out
# (chr22) CTCF regions.
../.venv/bin/deepgmap-attribute --model CTCF_chr20.keras --genome genome.fa.gz --regions CTCF.bed \
  -o CTCF_chr22_attributions.h5
