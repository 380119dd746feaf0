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
# A small conv4-FRSS model for the predict-bigwig tests.
../.venv/bin/deepgmap-train-model --genome genome.fa.gz --windows windows.tsv --width-scale 0.1 --epochs 1 \
  --steps-per-epoch 20 --batch-size 50 --max-valid-windows 500 --seed 1 -o model.keras
