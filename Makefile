# carbon-router: every target works from a fresh clone; `make install` builds .venv at the repo root.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench faults clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/carbon-router demo

lint: $(STAMP)
	$(BIN)/ruff check router streams tests bench scripts faults
	$(BIN)/ruff format --check router streams tests bench scripts faults
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python scripts/check_layers.py

test: lint
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench.kernel_bench --full
	$(BIN)/python -m bench.coldstart_bench
	$(BIN)/python -m bench.pipeline_bench
	$(BIN)/python -m bench.resolve_bench
	$(BIN)/python -m bench.codec_bench
	$(BIN)/python -m bench.e2e_bench
	$(BIN)/python -m bench.soak_bench

faults: $(STAMP)
	$(BIN)/python -m faults.runner

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
