# One command per developer task. `make run` and `make test` do all set-up themselves.
VENV    ?= .venv
PYTHON  ?= $(shell command -v python3.11 || command -v python3)
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: install run test lint format typecheck pytest services clean

# Reinstall only when the project's dependencies change (pip's cache keeps built wheels).
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

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

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
