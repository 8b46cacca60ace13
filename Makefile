# Two commands for a fresh clone:  make book  (the main job)  and  make test.
# Each creates .venv and installs the project when it is missing.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PROFILE ?= quick
# The extras the first install brings; the book workflow leaves out dev: make book EXTRAS=automl,book,online
EXTRAS  ?= automl,book,cluster,online,dev
# The real datasets live beside the repository in ../shared/data when it exists.
export TLRL_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)

.PHONY: book test test-wheel lint env bench data data-release

env: $(STAMP)

# torch==2.13.0 first: that pin is the CPU wheel on this project's machines (the workflows add
# PyTorch's CPU index); any other spec pulls several GB of CUDA. Then the project with every extra.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=23"
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

# The book test drives Debian's chromium through Playwright. Installed once; a no-op when present.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -q
	DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -q chromium

test: $(STAMP) $(CHROMIUM)
	$(PY) -m pytest -q

# The wheel in a fresh venv with no extras and the newest numpy: tlrl fit and predict with the
# shipped source model (minutes: it installs torch and the core dependencies).
test-wheel: $(STAMP)
	$(PY) -m pytest -q -m wheel tests/test_wheel.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# The book: every notebook through papermill under PROFILE into _build/executed/, then
# jupyter-book (execution off, warnings are errors) from those copies into _build/html/.
# A failing notebook stops make with papermill's report of the failing cell, and the
# previous book stays as it was. PAPERMILL passes more arguments: PAPERMILL="-p device cuda".
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
PAPERMILL ?=

book: $(STAMP)
	@mkdir -p _build/executed
	@set -e; for nb in $(NOTEBOOKS); do \
	  echo "== $$nb (profile $(PROFILE))"; \
	  $(VENV)/bin/papermill --cwd notebooks -k python3 -p profile $(PROFILE) $(PAPERMILL) \
	    $$nb _build/executed/$$(basename $$nb); \
	done
	$(PY) scripts/build_book.py _build/executed --out _build/html

bench: $(STAMP)
	$(PY) benchmarks/bench_fit_many.py

# The paper's datasets through pooch (SHA-256-checked) into the cache; prints the folder, for
# TLRL_DATA_DIR where no ../shared/data lies beside the clone (the workflows).
data: $(STAMP)
	@$(PY) -m tlrl.download

# The data release: the datasets of TLRL_DATA_DIR as release assets in _build/data-release and
# their hashes in tlrl/datasets.sha256; prints the upload command.
data-release: $(STAMP)
	$(PY) scripts/data_release.py --out _build/data-release
