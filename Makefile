# One place for set-up: every target that needs the environment depends on it,
# so `make demo` and `make test` work on a fresh clone with nothing installed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov (the second scanner of the synthesized template, tests/infra/test_checkov.py) pins
# dependencies of its own: it lives in its own virtualenv, apart from the product's pins.
# `setup` and `test` make it; demo, bench and lint do not need it.
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

.PHONY: setup test lint demo bench clean

$(STAMP): pyproject.toml $(wildcard package.json package-lock.json scavenger/tools/local/node/package-lock.json)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; fi
	# dynalite, the second DynamoDB emulator (demo --dynamodb dynalite and its tests)
	npm ci --prefix scavenger/tools/local/node --no-audit --no-fund --loglevel=error
	touch $(STAMP)

$(CHECKOV_STAMP):
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check checkov==$(CHECKOV_VERSION)
	touch $(CHECKOV_STAMP)

setup: $(STAMP) $(CHECKOV_STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint $(CHECKOV_STAMP)
	$(BIN)/pytest

demo: $(STAMP)
	$(BIN)/scavenger demo

bench: $(STAMP)
	$(BIN)/scavenger bench

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules scavenger/tools/local/node/node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache
