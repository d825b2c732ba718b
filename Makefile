# carbon-router: every target works from a fresh clone; `make install` builds .venv at the repo root.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CODE := router streams tests bench scripts faults

.PHONY: install demo test unit integration lint fmt bench faults clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/carbon-router demo

# .pre-commit-config.yaml runs the same checks on commit (`$(BIN)/pre-commit install` once)
lint: $(STAMP)
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python scripts/check_layers.py

# rewrite in place what ruff can fix; lists what it cannot
fmt: $(STAMP)
	$(BIN)/ruff format $(CODE)
	$(BIN)/ruff check --fix $(CODE)

# lint, then every test: unit, slow and integration (the integration tier starts tansu brokers)
test: lint
	$(BIN)/pytest -q

# the tests that need no broker and are not marked slow: under a minute
unit: $(STAMP)
	$(BIN)/pytest -q -m "not integration and not slow"

# the tests on real tansu brokers (marked integration: tests/integration/, the quick fault scenarios)
integration: $(STAMP)
	$(BIN)/pytest -q -m integration

bench: $(STAMP)
	$(BIN)/python -m bench.kernel_bench --full
	$(BIN)/python -m bench.coldstart_bench
	$(BIN)/python -m bench.pipeline_bench
	$(BIN)/python -m bench.resolve_bench
	$(BIN)/python -m bench.codec_bench
	$(BIN)/python -m bench.e2e_bench
	$(BIN)/python -m bench.door_bench --pin
	$(BIN)/python -m bench.soak_bench

faults: $(STAMP)
	$(BIN)/python -m faults.runner

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
