# liqheat developer commands. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# dg compares the active virtual environment with the project's: this is the project's.
DG := VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/dg
RANGE ?= 2025-12-01...2025-12-30
# The project's Dagster instance (absolute: Dagster requires it): run history, schedules.
export DAGSTER_HOME := $(CURDIR)/dagster_home
# The real 30-day sample beside the checkout (`make dev-real`, `make backfill-real`).
REAL := LIQHEAT_DATA_DIR=../shared/data/binance LIQHEAT_SYMBOLS=BTCUSDT,ETHUSDT \
	LIQHEAT_LIQUIDATIONS_DIR=../shared/data/liquidations

.PHONY: install demo test lint dev dev-real backfill-real bench bench-symbols serve

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

# Offline end to end: synthetic DEMOUSDT archive -> ingest -> model -> heatmap, into
# data/liqheat.duckdb; the run is recorded in dagster_home/ (`make dev` shows it).
demo: install
	$(BIN)/liqheat demo

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(DG) check defs

# Dagster UI + daemon (schedules, backfills) on the demo symbol `make demo` wrote; runs are kept
# in dagster_home/ (one run at a time). LIQHEAT_SYMBOLS etc. in the environment take precedence.
dev: install
	LIQHEAT_SYMBOLS=$${LIQHEAT_SYMBOLS:-DEMOUSDT} $(DG) dev

# The same on the real sample: BTCUSDT and ETHUSDT with observed liquidations.
dev-real: install
	$(REAL) $(DG) dev

# The real sample, both symbols, every asset and check in one run.
backfill-real: install
	$(REAL) $(DG) launch --job daily_liqheat_job --partition-range $(RANGE) \
		-m liqheat_pipeline.definitions \
		--config-json '{"loggers": {"console": {"config": {"log_level": "INFO"}}}}' 

bench: install
	$(BIN)/python scripts/bench_demo_market.py
	$(BIN)/python scripts/bench_engine.py
	$(BIN)/python scripts/bench_pipeline.py
	$(BIN)/python scripts/bench_api.py

# Synthetic symbols x days in one range run on both cores (10 x 365 takes hours; e.g.
# `make bench-symbols BENCH_SYMBOLS=4 BENCH_DAYS=10` for a quick look).
BENCH_SYMBOLS ?= 10
BENCH_DAYS ?= 365
bench-symbols: install
	$(BIN)/python scripts/bench_symbols.py --symbols $(BENCH_SYMBOLS) --days $(BENCH_DAYS)

serve: install
	$(BIN)/liqheat serve
