# Two commands do all set-up on a fresh machine with Python 3.11 and make:
#   make demo   create .venv if missing, install emsym, run it on the bundled models
#   make test   create .venv if missing, install emsym with its test extra, run pytest
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO   ?= demo-output

.PHONY: demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/python -m emsym.demo $(DEMO)

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/bench_derive.py
	$(BIN)/python benchmarks/bench_run.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
