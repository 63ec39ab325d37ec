# molbench: `make train` (set up + the main job), `make test` (set up + every test), `make book` (set up + the paper), `make api` (the
# paper's API pages from the library notebooks), `make lab` (set up + JupyterLab).
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
ARCH ?= gnn         # make train's backbone: at its 6 training minutes the EGNN learns most (59.5 % stable atoms vs the Pairformer's 47.9 %)
GEN ?= flow_matching
PARAMS ?=            # extra papermill arguments, e.g. PARAMS='-f params/smoke.yaml -p dataset perov5'
LAB_PORT ?= 8888    # make lab: the port JupyterLab listens on (on localhost)
LAB_ARGS ?=         # make lab: extra JupyterLab options, e.g. LAB_ARGS=--no-browser
PIP := $(BIN)/python -m pip

.PHONY: setup test test-slow book api train lab clean-book

setup: $(VENV)/.installed

# The exact tested set: every install below runs with -c constraints.txt (settings.ini itself only gives ranges).
# torch first, pinned: a bare `torch` would pull a multi-GB CUDA build (see ../shared/STACK.md).
$(VENV)/.installed: settings.ini setup.py Makefile constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e ".[dev]"
	# matminer (CDVAE's Magpie + CrystalNN fingerprints): every release that allows pandas 3 says pandas<3, and the one pip
	# would pick instead (0.8) fails to import; 0.10.1 works with pandas 3 for the featurizers molbench uses.
	$(PIP) install -q -c constraints.txt --no-deps matminer==0.10.1
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (molbench)" >/dev/null
	touch $@

test: setup
	bash scripts/test.sh

test-slow: setup
	bash scripts/test.sh --flags slow

book: setup
	bash scripts/build_book.sh

# The book's API reference: every library notebook executed (slow cells skipped, as nbdev_test does) into book/api/ (minutes),
# with reference data from ../shared/data as in scripts/test.sh; the pages are committed and the book does not re-execute them.
api: setup
	if [ -z "$${MOLBENCH_DATA_DIR:-}" ] && [ -d ../shared/data ]; then export MOLBENCH_DATA_DIR="$$(cd ../shared/data && pwd)"; fi; \
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python scripts/api_pages.py

train: setup
	mkdir -p runs
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/papermill nbs/train.ipynb runs/train-$(ARCH)-$(GEN).ipynb -k python3 -p profile recipe_$(GEN) -p arch $(ARCH) -p gen $(GEN) $(PARAMS)

# JupyterLab on the project root with the venv's kernel (python3); reference data from ../shared/data as in scripts/test.sh.
# As root (containers, CI machines) it adds --allow-root, which JupyterLab otherwise refuses; it listens on localhost only.
lab: setup
	if [ -z "$${MOLBENCH_DATA_DIR:-}" ] && [ -d ../shared/data ]; then export MOLBENCH_DATA_DIR="$$(cd ../shared/data && pwd)"; fi; \
	if [ "$$(id -u)" = 0 ]; then root=--allow-root; else root=; fi; \
	PATH="$(CURDIR)/$(BIN):$$PATH" JUPYTER_PREFER_ENV_PATH=1 exec $(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" --port=$(LAB_PORT) $$root $(LAB_ARGS)

clean-book:
	rm -rf _build book/_static/vendor
