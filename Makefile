# Two commands set Parley up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.parley-installed

.PHONY: run test test-all bench lint clean

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

## Everything, long-running tests included
test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m "slow or not slow"

clean:
	rm -rf $(VENV) parley-data .pytest_cache
