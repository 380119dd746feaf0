# The README's two commands: `make demo` (set up, run the main job on test-data/) and
# `make test` (set up, run every test: pytest, then planemo lint + test in a real Galaxy).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DEMO_OUT := demo-output

.PHONY: setup system-deps demo test test-python test-galaxy benchmark clean

# From Debian: bedtools (test and benchmark baselines), curl (Galaxy harness), a C compiler and
# Python headers (MACS3 builds from source), venv support for $(PYTHON). Installed only if missing.
system-deps:
	@missing=""; \
	command -v bedtools >/dev/null || missing="$$missing bedtools"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	command -v gcc >/dev/null || missing="$$missing build-essential"; \
	$(PYTHON) -c "import ensurepip" 2>/dev/null || missing="$$missing python3-venv"; \
	$(PYTHON) -c "import os, sysconfig; assert os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h'))" \
	  2>/dev/null || missing="$$missing python3-dev"; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing from Debian:$$missing"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Pinned to the versions the Galaxy wrappers require, so that the tests run what a Galaxy resolves.
$(VENV)/.installed: pyproject.toml $(wildcard tools/*.xml) $(BIN)/python
	$(BIN)/python tests/galaxy/requirements.py constraints tools > $(VENV)/constraints.txt
	$(BIN)/pip install -q -e ".[cpu,test]" -c $(VENV)/constraints.txt
	touch $@

setup: system-deps $(VENV)/.installed

# The demo trains its own CTCF model for DEMO_MINUTES on the example genome (chr20:1-5 Mb; chr22's
# real megabase held out) and predicts with test-data/CTCF_chr20_frss_bn.keras, the same kind of model
# trained longer on 200 bp windows of all of hg19 chr20 (test-data/make_test_data.sh); its global max-pool
# reads the demo's 1 kb windows too.
DEMO_MINUTES ?= 2
SHIPPED_MODEL := test-data/CTCF_chr20_frss_bn.keras
MOTIFS := test-data/JASPAR2024_CORE_clusters.meme

demo: setup
	mkdir -p $(DEMO_OUT)
	$(BIN)/deepgmap-bam-to-peaks --bam test-data/K562_H3K4me3.chr22_20M.bam --name K562_H3K4me3 \
	    --blacklist test-data/blacklist.bed --min-peaks 20 --peaks $(DEMO_OUT)/H3K4me3.narrowPeak \
	    --summits $(DEMO_OUT)/H3K4me3.summits.bed --qc $(DEMO_OUT)/H3K4me3.qc.tsv --qc-plot $(DEMO_OUT)/H3K4me3.qc.png \
	    --qc-multiqc $(DEMO_OUT)/H3K4me3_mqc.json
	$(BIN)/deepgmap-make-training-windows --genome test-data/genome.fa.gz --peaks test-data/CTCF.bed --names CTCF \
	    --blacklist test-data/blacklist.bed --valid-chroms chr22 --seed 1 -o $(DEMO_OUT)/windows.tsv.gz
	$(BIN)/deepgmap-train-model --genome test-data/genome.fa.gz --windows $(DEMO_OUT)/windows.tsv.gz \
	    --width-scale 0.25 --max-minutes $(DEMO_MINUTES) --epochs 40 --steps-per-epoch 100 --patience 0 \
	    --motif-db $(MOTIFS) --seed 1 -o $(DEMO_OUT)/model.keras --metrics $(DEMO_OUT)/metrics.tsv \
	    --report $(DEMO_OUT)/report.html
	$(BIN)/deepgmap-predict-bigwig --model $(SHIPPED_MODEL) --genome test-data/genome.fa.gz \
	    --outdir $(DEMO_OUT)/tracks --peaks-out $(DEMO_OUT)/tracks/peaks \
	    --evaluate $(DEMO_OUT)/windows.tsv.gz --motif-db $(MOTIFS)
	$(BIN)/deepgmap-motif-extract --model $(SHIPPED_MODEL) --scale 10 -o $(DEMO_OUT)/kernels.meme \
	    --motif-db $(MOTIFS) --tomtom $(DEMO_OUT)/tomtom.tsv \
	    --logos $(DEMO_OUT)/logos.html --connections $(DEMO_OUT)/connections.png
	@$(BIN)/python demo/summary.py $(DEMO_OUT) $(SHIPPED_MODEL) test-data/CTCF.bed

test-python: setup
	$(BIN)/python -m pytest -p no:cacheprovider --durations=30 tests

test-galaxy: setup
	DEEPGMAP_BIN=$(BIN) PYTHON=$(PYTHON) tests/galaxy/run.sh tools workflows/deepgmap.gxwf.yml

test: test-python test-galaxy

benchmark: setup
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .galaxy-run *.egg-info
