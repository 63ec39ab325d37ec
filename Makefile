# molbench: `make train` (set up + the main job), `make test` (set up + every test), `make book` (set up + the paper).
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
ARCH ?= pairformer
GEN ?= flow_matching
PARAMS ?=            # extra papermill arguments, e.g. PARAMS='-f params/smoke.yaml -p dataset perov5'

.PHONY: setup test test-slow book train clean-book

setup: $(VENV)/.installed

# torch first, pinned: a bare `torch` would pull a multi-GB CUDA build (see ../shared/STACK.md).
$(VENV)/.installed: settings.ini setup.py Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	# matminer (CDVAE's Magpie + CrystalNN fingerprints): every release that allows pandas 3 says pandas<3, and the one pip
	# would pick instead (0.8) fails to import; 0.10.1 works with pandas 3 for the featurizers molbench uses.
	$(BIN)/python -m pip install -q --no-deps matminer==0.10.1
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (molbench)" >/dev/null
	touch $@

test: setup
	bash scripts/test.sh

test-slow: setup
	bash scripts/test.sh --flags slow

book: setup
	bash scripts/build_book.sh

train: setup
	mkdir -p runs
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/papermill nbs/train.ipynb runs/train-$(ARCH)-$(GEN).ipynb -k python3 -p arch $(ARCH) -p gen $(GEN) $(PARAMS)

clean-book:
	rm -rf _build book/_static/vendor
