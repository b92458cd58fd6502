# One place for set-up: every target that needs the environment depends on it,
# so `make demo` and `make test` work on a fresh clone with nothing installed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test lint demo bench clean

$(STAMP): pyproject.toml $(wildcard package.json package-lock.json scavenger/local/node/package-lock.json)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; fi
	# dynalite, the second DynamoDB emulator (demo --dynamodb dynalite and its tests)
	npm ci --prefix scavenger/local/node --no-audit --no-fund --loglevel=error
	touch $(STAMP)

setup: $(STAMP)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

demo: setup
	$(BIN)/scavenger demo

bench: setup
	$(BIN)/scavenger bench

clean:
	rm -rf $(VENV) node_modules scavenger/local/node/node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache
