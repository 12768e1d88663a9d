# Two commands do all the set-up: `make demo` and `make test` (each creates the venv if needed).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# pynenc 0.4 needs Python >= 3.12: take the first 3.12+ interpreter we find.
PYTHON ?= $(shell for p in python3.12 python3.13 python3 /root/.pyenv/versions/3.12*/bin/python3.12; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { command -v $$p; break; }; done)
PYTEST_ARGS ?=
# The suite runs on two pytest-xdist workers (same per-test seeds and results as a serial run);
# TEST_WORKERS=0 runs it serially in one process.
TEST_WORKERS ?= 2

.PHONY: venv test demo bench lint typecheck cycles clean

$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: Python >= 3.12 is required (pynenc 0.4 needs it); none found on PATH" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

test: venv
	$(PY) -m pytest -q -n $(TEST_WORKERS) $(PYTEST_ARGS)

demo: venv
	$(PY) -m pytest examples -v --wf-summary --wf-report=wf-report $(PYTEST_ARGS)
	@echo "HTML reports (workflow tree and virtual timeline per test): wf-report/"

bench: venv
	$(PY) benchmarks/run.py

# ruff, then the import contracts of pyproject.toml's [tool.importlinter] (the one-way layers of
# docs/architecture.md; function-level and TYPE_CHECKING imports count), then no import cycle
# at all, inside a layer included (same counting).
lint: venv
	$(VENV)/bin/ruff check pynenc_wf_testing pytest_plugin tests examples benchmarks
	$(VENV)/bin/lint-imports --no-cache
	$(PY) benchmarks/import_cycles.py --max 0

# mypy --strict with warn_unused_ignores (settings in pyproject.toml's [tool.mypy]).
typecheck: venv
	$(VENV)/bin/mypy

# How many of the package's modules sit in an import cycle (same counting as lint-imports).
cycles: venv
	$(PY) benchmarks/import_cycles.py

clean:
	rm -rf $(VENV) build *.egg-info
