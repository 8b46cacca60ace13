# Two commands for a fresh clone:  make book  (the main job)  and  make test.
# Each creates .venv and installs the project when it is missing.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PROFILE ?= quick
# The real datasets live beside the repository in ../shared/data when it exists.
export TLRL_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)

.PHONY: book test lint env bench

env: $(STAMP)

# torch==2.13.0 first: that pin is the CPU wheel on this project's machines; any other
# spec pulls several GB of CUDA. Then the project with its pinned dependency set.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=23"
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) benchmarks/bench_fit_many.py
