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

# Another apt (unattended-upgrades, a second shell) may hold the dpkg lock: wait for it.
APT_GET := apt-get -o DPkg::Lock::Timeout=600

system-packages:
	@if [ "$$(id -u)" = 0 ] && ! command -v tesseract >/dev/null; then \
	  echo "installing tesseract-ocr, tesseract-ocr-rus, fonts-dejavu-core (apt)"; \
	  $(APT_GET) update -qq && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq \
	    tesseract-ocr tesseract-ocr-rus fonts-dejavu-core >/dev/null; fi

TLS_HINT := if the error above is about a certificate (a corporate proxy or private CA): \
  UV_NATIVE_TLS=1 makes uv trust the system store, or set SSL_CERT_FILE=/path/to/ca-bundle.pem \
  (pip: PIP_CERT=/path/to/ca-bundle.pem)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q uv || { echo "hint: $(TLS_HINT)" >&2; exit 1; }

setup: $(PY) system-packages
	$(UV) pip install -q --python $(PY) -e '.[dev]' || { echo "hint: $(TLS_HINT)" >&2; exit 1; }

demo: setup
	@echo "the first run builds the tesseract, hf-cpu and metrics envs (minutes); later runs reuse them"
	$(VENV)/bin/vlmhb run tasks/demo.csv --isolation venv

# The suite writes only into temp folders; this names a persistent home for the envs it builds
# (inside the checkout, git-ignored), so a second `make test` reuses them. Never ~/.cache/vlmhb.
export VLMHB_TEST_HOME ?= $(CURDIR)/.ci-home

test: setup
	$(PY) -m pytest -q -rfEs --durations=15 -p no:cacheprovider

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy

bench: setup
	for b in benchmarks/*.py; do $(PY) $$b; done
