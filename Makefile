# scorch — the two commands a new user needs:
#   make demo   installs what is missing, builds, makes the example data, runs the example job
#   make test   the whole test suite
# Everything heavy lives in a cache outside the clone ($(SCORCH_CACHE)), so new
# clones and CI runs reuse it.

SHELL := /bin/bash
SCORCH_CACHE ?= $(HOME)/.cache/scorch
VENV := $(SCORCH_CACHE)/torch-2.13.0
PYTHON := $(VENV)/bin/python
export CARGO_TARGET_DIR ?= $(SCORCH_CACHE)/target
# tch's build script takes libtorch from the venv's torch package.
export LIBTORCH_USE_PYTORCH := 1
export VIRTUAL_ENV := $(VENV)
export PATH := $(VENV)/bin:$(PATH)
# Tests find the Python tools here.
export SCORCH_PYTHON := $(PYTHON)
BIN := $(CARGO_TARGET_DIR)/debug/scorch
DEMO_DATE ?= 2026-11-28

.PHONY: demo test setup build data model lint clean-output help

help:
	@echo "make demo   - set up, build, generate example data, run jobs/churn_daily.yaml"
	@echo "make test   - run the whole test suite"
	@echo "make build  - build the scorch binary ($(BIN))"
	@echo "make data   - generate the example dataset under data/churn (if missing)"
	@echo "make model  - retrain the example model bundle models/churn/1.0.0"
	@echo "make lint   - cargo fmt --check and clippy -D warnings"

setup:
	@scripts/setup-python.sh "$(VENV)"

build: setup
	cargo build --locked --bin scorch

data: setup
	@if [ ! -d data/churn/features ]; then \
	  "$(PYTHON)" python/make_churn_data.py --out data/churn; \
	fi

demo: build data
	"$(BIN)" run jobs/churn_daily.yaml --date $(DEMO_DATE)
	@echo
	@echo "Scored table:   output/churn_scores/ds=$(DEMO_DATE)/part-00000.parquet"
	@echo "Run manifest:   output/churn_scores/ds=$(DEMO_DATE)/_manifest.json (every run: output/churn_scores/_runs/)"
	@echo "Try:            $(BIN) validate jobs/"
	@echo "                $(BIN) run jobs/churn_daily_sql.yaml --date $(DEMO_DATE)"

test: setup
	cargo build --locked --bin scorch
	cargo test --locked --no-fail-fast

model: build data
	"$(PYTHON)" python/train_churn.py --scorch "$(BIN)" --data data/churn --out models/churn/1.0.0

lint:
	cargo fmt --all -- --check
	cargo clippy --locked --all-targets -- -D warnings

clean-output:
	rm -rf output
