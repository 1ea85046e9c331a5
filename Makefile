# kjobs — the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint readme bench bench-peers serve clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Set up, run the demo simulation, then show how to start the server.
run: $(STAMP)
	$(BIN)/kjobs demo

## Set up, lint, type-check and run every test.
test: $(STAMP) lint
	$(BIN)/pytest -q

## Rerun the README's examples and write the outputs they print into README.md (review the diff).
readme: $(STAMP)
	$(BIN)/python -m tests.readme

lint: $(STAMP)
	$(BIN)/ruff check engine steps tests bench
	$(BIN)/ruff format --check engine steps tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

bench-peers: $(STAMP)
	$(BIN)/python -m bench --peers

serve: $(STAMP)
	$(BIN)/kjobs serve

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache
