# Two commands do all set-up on a fresh machine with Python 3.11 and make:
#   make demo   create .venv if missing, install emsym, run it on the bundled models
#   make test   create .venv if missing, install emsym with its test and lint extras, run ruff, mypy and pytest
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO   ?= demo-output

.PHONY: demo test lint bench browser latex rmclust clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,lint]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/python -m emsym.demo $(DEMO)

test: lint browser latex rmclust
	$(BIN)/python -m pytest

# ruff (lint and format) and mypy, configured in pyproject.toml; part of `make test`.
lint: $(VENV)/.installed-test
	$(BIN)/ruff check emsym tests benchmarks tools conftest.py
	$(BIN)/ruff format --check emsym tests benchmarks tools conftest.py
	$(BIN)/mypy

# The HTML-sheet test drives headless Chromium. Install Debian's package where we can (root
# with apt-get); elsewhere the test is skipped with its reason. Never fails the build.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	      echo "installing chromium for the HTML-sheet test (apt-get)"; \
	      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
	        || echo "could not install chromium: the browser test will be skipped"; \
	    else echo "chromium not found and not installable here: the browser test will be skipped"; fi; }

# `emsym select` is compared with R's mclust (Debian's r-cran-mclust, mclust 6) on the same data.
# Installed where we can (root with apt-get); elsewhere that test is skipped with its reason.
rmclust:
	@Rscript -e 'library(mclust)' >/dev/null 2>&1 || \
	  { if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	      echo "installing R and mclust for the model-selection comparison (apt-get)"; \
	      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	         r-base-core r-cran-mclust) >/dev/null 2>&1 \
	        || echo "could not install R mclust: the mclust comparison will be skipped"; \
	    else echo "R mclust not found and not installable here: the mclust comparison will be skipped"; fi; }

# The LaTeX sheet and derivation tests compile with pdflatex (and read the PDF with poppler's
# pdftotext), and the Markdown sheets must survive pandoc. Install Debian's packages where we can;
# elsewhere those tests are skipped with the reason.
latex:
	@command -v pdflatex >/dev/null 2>&1 && command -v pdftotext >/dev/null 2>&1 && command -v pandoc >/dev/null 2>&1 || \
	  { if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	      echo "installing texlive and poppler-utils for the LaTeX tests (apt-get)"; \
	      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq texlive-latex-base \
	         texlive-latex-recommended poppler-utils pandoc) >/dev/null 2>&1 \
	        || echo "could not install texlive: the LaTeX tests will be skipped"; \
	    else echo "pdflatex not found and not installable here: the LaTeX tests will be skipped"; fi; }

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/bench_derive.py
	$(BIN)/python benchmarks/bench_run.py
	$(BIN)/python benchmarks/bench_run_full.py
	$(BIN)/python benchmarks/bench_loop_full.py
	$(BIN)/python benchmarks/bench_solve.py
	$(BIN)/python benchmarks/bench_families.py
	$(BIN)/python benchmarks/bench_grade.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
