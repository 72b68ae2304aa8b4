# liqheat developer commands. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RANGE ?= 2025-12-01...2025-12-30

.PHONY: install demo test lint dev backfill-real bench serve

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

# Offline end to end: synthetic DEMOUSDT archive -> ingest -> model -> heatmap, into data/liqheat.duckdb.
demo: install
	$(BIN)/liqheat demo

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/dg check defs

# Dagster UI + daemon (schedules, backfills); runs are kept in dagster_home/ (one run at a time).
dev: install
	DAGSTER_HOME=$(CURDIR)/dagster_home $(BIN)/dagster dev -w workspace.yaml

# The real 30-day sample beside the checkout, both symbols, one run.
backfill-real: install
	LIQHEAT_DATA_DIR=../shared/data/binance LIQHEAT_SYMBOLS=BTCUSDT,ETHUSDT \
	LIQHEAT_LIQUIDATIONS_DIR=../shared/data/liquidations \
	$(BIN)/dagster asset materialize -m liqheat_pipeline.definitions --select '*' \
		--partition-range $(RANGE)

bench: install
	$(BIN)/python scripts/bench_demo_market.py
	$(BIN)/python scripts/bench_engine.py
	$(BIN)/python scripts/bench_pipeline.py
	$(BIN)/python scripts/bench_api.py

serve: install
	$(BIN)/liqheat serve
