# vlmhb developer entry points. `make demo` and `make test` work on a fresh Debian/Ubuntu
# machine: they install what is missing (system packages only when run as root).
PYTHON ?= python3
VENV ?= .venv
UV := $(VENV)/bin/uv
PY := $(VENV)/bin/python
# Where uv finds the CPU build of torch (a +cpu local version, not on PyPI). CI points this
# at a folder holding the wheel; elsewhere PyTorch's CPU wheel index works.
ifeq ($(wildcard /opt/wheels/torch-*+cpu-*.whl),)
export UV_FIND_LINKS ?= https://download.pytorch.org/whl/torch/
else
export UV_FIND_LINKS ?= /opt/wheels
endif

.PHONY: setup system-packages demo test test-fast lint bench

system-packages:
	@if [ "$$(id -u)" = 0 ] && ! command -v tesseract >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    tesseract-ocr tesseract-ocr-rus fonts-dejavu-core >/dev/null; fi

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q uv

setup: $(PY) system-packages
	$(UV) pip install -q --python $(PY) -e '.[dev]'

demo: setup
	$(VENV)/bin/vlmhb run tasks/demo.csv --isolation venv

test: setup
	$(PY) -m pytest -q -rs --durations=15 -p no:cacheprovider

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy

bench: setup
	for b in benchmarks/*.py; do $(PY) $$b; done
