# Two commands set Parley up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.parley-installed
BENCH_STAMP := $(VENV)/.parley-bench-installed

.PHONY: run test test-all bench bench-full lint protocol clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

## Create the virtualenv, install, migrate and serve on http://127.0.0.1:8000
run: $(STAMP)
	$(BIN)/parley migrate
	$(BIN)/parley serve

## Run the test suite (SQLite and PostgreSQL)
test: $(STAMP)
	$(BIN)/python -m pytest -q

## Strict typing (mypy --strict) and the linter (ruff) on src/; CI runs it before the tests
lint: $(STAMP)
	$(BIN)/python -m ruff check src
	$(BIN)/python -m mypy

## Everything, long-running tests included
test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m "slow or not slow"

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

## Benchmarks, short run (under 3 minutes): ratio table, JSON in bench/results/, a section
## appended to docs/benchmarks.md, plots in docs/benchmarks/ (loopback only)
bench: $(BENCH_STAMP)
	BENCH_COMMAND="make bench" $(BIN)/python bench/run.py --mode short

## Benchmarks, full run: 10,000 connections, a storm of 5,000, 1M messages (about 15 minutes)
bench-full: $(BENCH_STAMP)
	BENCH_COMMAND="make bench-full" $(BIN)/python bench/run.py --mode full

## Regenerate docs/protocol.schema.json and the web client's protocol.js (after adding an
## event, a method or a code: see src/parley/wire/__init__.py)
protocol: $(STAMP)
	$(BIN)/parley protocol-schema

clean:
	rm -rf $(VENV) parley-data .pytest_cache
