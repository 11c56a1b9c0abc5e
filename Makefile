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

export SCORCH_AIRFLOW := $(SCORCH_CACHE)/airflow-3/bin
# ADBC drivers' shared libraries (make adbc-drivers), where source.adbc finds them.
ADBC_DIR := $(SCORCH_CACHE)/adbc
export SCORCH_ADBC_DRIVERS := $(ADBC_DIR)

.PHONY: adbc-drivers adbc-demo wheel wheel-dev test-wheel wheelhouse develop image-tools image-base image-wheels image image-demo bench-nonfinite deny fuzz fuzz-build airflow demo test setup build data model lint clean-output help pg-server pg-demo pg-stop bench-pg chromium s3-server s3rver s3-demo s3-stop bench-s3 azurite bench bench-score bench-drift evidently nannyml bench-nannyml bench-scale bench-shadow test-fast

help:
	@echo "make demo   - set up, build, generate example data, run jobs/churn_daily.yaml"
	@echo "make test   - run the whole test suite"
	@echo "make test-fast - the unit tests and the integration tests that need no service"
	@echo "make build  - build the scorch binary ($(BIN))"
	@echo "make data   - generate the example dataset under data/churn (if missing)"
	@echo "make model  - retrain the example model bundles models/churn/1.0.0 and 2.0.0"
	@echo "make lint   - cargo fmt --check and clippy -D warnings"
	@echo "make wheel  - the Python package: dist/scorch-*.whl (release build); make wheel test-wheel SCORCH_WHEEL_DIR=dist tests it"
	@echo "make image  - the runtime image localhost/scorch:VERSION (podman); make image-demo runs the example in it"
	@echo "make adbc-drivers - install the ADBC drivers source.adbc loads into $(ADBC_DIR)"
	@echo "make deny   - cargo deny: licenses, bans, sources (and advisories where GitHub is reachable)"
	@echo "make pg-demo - start a local PostgreSQL, load the example data, run jobs/churn_daily_pg.yaml"
	@echo "make adbc-demo - the same server read through the ADBC PostgreSQL driver (jobs/churn_daily_adbc.yaml)"
	@echo "make pg-stop - stop that server"
	@echo "make s3-demo - start a local S3 server, put the example data there, run jobs/churn_daily_s3.yaml"
	@echo "make s3-stop - stop that server"
	@echo "make fuzz   - fuzz the job, preprocessing and contract parsers, templates and data values (FUZZ_SECONDS each, default 600)"

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
	@echo "Run report:     $$(ls -t output/churn_scores/_runs/*.report.html | head -n 1) (and .report.json beside it)"
	@echo "Metrics:        output/churn_scores/_metrics/ (one Parquet file per run)"
	@echo "Try:            $(BIN) validate jobs/ schemas/"
	@echo "                $(BIN) run jobs/churn_daily_contract.yaml --date $(DEMO_DATE)"
	@echo "                $(BIN) run jobs/churn_daily_sql.yaml --date $(DEMO_DATE)"
	@echo "                $(BIN) shadow jobs/churn_daily.yaml --challenger churn@2.0.0 --from 2026-11-08 --to 2026-11-21"
	@echo "                $(BIN) backfill jobs/churn_daily.yaml --from 2026-11-08 --to 2026-11-27 && $(BIN) evaluate jobs/churn_daily.yaml --from 2026-11-08 --to 2026-11-27"
	@echo "                $(BIN) history jobs/churn_daily.yaml --out output/churn_history.html"
	@echo "                $(BIN) run jobs/churn_daily.yaml --date 2026-11-06   # a flipped correlation: multivariate drift warns"

# Headless Chromium for the test that opens report.html (Debian's package).
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  echo "installing Chromium (apt-get install -y chromium)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

# PostgreSQL server binaries for the tests (they start their own throwaway servers).
pg-server:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  echo "installing PostgreSQL server binaries (apt-get install -y postgresql)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	fi

# The server runs as the `postgres` user when make runs as root, so its folder
# must not be under root's home.
PG_DIR ?= /tmp/scorch-pg-demo
PG_PORT ?= 54329
export SCORCH_PG_PASSWORD ?= scorch-demo

pg-demo: build data pg-server
	scripts/pg-local.sh start "$(PG_DIR)" $(PG_PORT)
	scripts/pg-local.sh load "$(PG_DIR)" $(PG_PORT) "$(PYTHON)"
	"$(BIN)" run jobs/churn_daily_pg.yaml --date $(DEMO_DATE)
	@echo "Scores from the warehouse: output/churn_scores_pg/ds=$(DEMO_DATE)/ (stop the server: make pg-stop)"

adbc-demo: build data pg-server adbc-drivers
	scripts/pg-local.sh start "$(PG_DIR)" $(PG_PORT)
	scripts/pg-local.sh load "$(PG_DIR)" $(PG_PORT) "$(PYTHON)"
	"$(BIN)" run jobs/churn_daily_adbc.yaml --date $(DEMO_DATE)
	@echo "Scores read through the ADBC PostgreSQL driver: output/churn_scores_adbc/ds=$(DEMO_DATE)/ (stop the server: make pg-stop)"

pg-stop:
	scripts/pg-local.sh stop "$(PG_DIR)"

# Benchmarks print figures; they are not part of `make test`.
bench-pg: build pg-server adbc-drivers
	bench/pg_rss.sh "$(BIN)" "$(PYTHON)" $(or $(ROWS),5000000)

# A real S3-compatible server for the tests: s3s-fs from crates.io, built once into the cache.
S3S_FS := $(SCORCH_CACHE)/s3s-fs/bin/s3s-fs
export SCORCH_S3S_FS := $(S3S_FS)
s3-server:
	@if [ ! -x "$(S3S_FS)" ]; then \
	  echo "installing s3s-fs 0.14.0 into $(SCORCH_CACHE)/s3s-fs (once, about 3 minutes)"; \
	  cargo install s3s-fs --version 0.14.0 --features binary --locked --root "$(SCORCH_CACHE)/s3s-fs"; \
	fi

S3_DIR ?= /tmp/scorch-s3-demo
S3_PORT ?= 9014
export SCORCH_S3_KEY ?= scorch-demo-key
export SCORCH_S3_SECRET ?= scorch-demo-secret

s3-demo: build data s3-server
	scripts/s3-local.sh start "$(S3_DIR)" $(S3_PORT) "$(S3S_FS)"
	mkdir -p "$(S3_DIR)/lake/churn" && cp -r data/churn/features "$(S3_DIR)/lake/churn/"
	"$(BIN)" run jobs/churn_daily_s3.yaml --date $(DEMO_DATE)
	@echo "Scores on S3: s3://lake/churn_scores/ds=$(DEMO_DATE)/ (files under $(S3_DIR)/lake; stop the server: make s3-stop)"

s3-stop:
	scripts/s3-local.sh stop "$(S3_DIR)"

# scorch end to end against pandas + torch and polars + torch, with the ceilings.
# ROWS (default 5M), BIG_ROWS (memory check, default 20M), RUNS (default 3), HIDDEN.
bench: bench-score bench-drift bench-nannyml

bench-score: setup
	cargo build --locked --bin scorch --example forward_bench
	"$(PYTHON)" bench/run.py --scorch "$(BIN)" --forward-bench "$(CARGO_TARGET_DIR)/debug/examples/forward_bench" \
	  --rows $(or $(ROWS),5000000) --big-rows $(or $(BIG_ROWS),20000000) --runs $(or $(RUNS),3) --hidden $(or $(HIDDEN),256$(comma)128)

comma := ,

# The example day with ±inf, NaN and "" in some columns, scored with a report: peak RSS.
bench-nonfinite: build
	"$(PYTHON)" bench/nonfinite.py "$(BIN)" $(or $(EVERY),10) $(or $(ROWS),20000)

# Evidently for the drift benchmark, in its own venv (Evidently 0.7 needs pandas < 3).
EVIDENTLY_VENV := $(SCORCH_CACHE)/evidently-0.7.23
evidently:
	@if [ ! -x "$(EVIDENTLY_VENV)/bin/python" ] || ! "$(EVIDENTLY_VENV)/bin/python" -c "import evidently" 2>/dev/null; then \
	  echo "installing Evidently 0.7.23 into $(EVIDENTLY_VENV) (once, about a minute)"; \
	  python3 -m venv "$(EVIDENTLY_VENV)" && \
	  "$(EVIDENTLY_VENV)/bin/pip" install --quiet --disable-pip-version-check evidently==0.7.23 "pandas<3" pyarrow; \
	fi

# NannyML for the tests that compare CBPE and PCA reconstruction error with it, and
# for its benchmark, in its own venv (its pins clash with the main venv's).
NANNYML_VENV := $(SCORCH_CACHE)/nannyml-0.13.1
export SCORCH_NANNYML := $(NANNYML_VENV)/bin/python
nannyml:
	@if [ ! -x "$(NANNYML_VENV)/bin/python" ] || ! "$(NANNYML_VENV)/bin/python" -c "import nannyml" 2>/dev/null; then \
	  echo "installing NannyML 0.13.1 into $(NANNYML_VENV) (once, about a minute)"; \
	  python3 -m venv "$(NANNYML_VENV)" && \
	  "$(NANNYML_VENV)/bin/pip" install --quiet --disable-pip-version-check -r python/nannyml-requirements.txt; \
	fi

# CBPE and multivariate drift on NANNYML_ROWS rows (default 5M): scorch in the scoring
# pass next to NannyML on the same data (bench/nannyml_bench.py).
bench-nannyml: build nannyml
	"$(PYTHON)" bench/nannyml_bench.py "$(BIN)" "$(SCORCH_NANNYML)" "$(SCORCH_CACHE)/bench-nannyml" \
	  $(or $(NANNYML_ROWS),5000000)

# One day of SCALE_ROWS (default 100M) rows in SCALE_FILES files scored by the example
# job with every check, drift and the key check on; every report figure compared with
# DuckDB's (bench/scale.py). Not part of `make test` (about 30 minutes here).
bench-scale: build
	"$(PYTHON)" bench/scale.py "$(BIN)" "$(SCORCH_CACHE)/bench-scale" $(or $(SCALE_ROWS),100000000) $(or $(SCALE_FILES),100)

# A shadow comparison of one day of SHADOW_ROWS (default 2M) rows in bounded memory
# (report.memory_budget_mb SHADOW_BUDGET_MB, default 256), its figures beside DuckDB's
# (bench/shadow_scale.py). Not part of `make test`.
bench-shadow: build
	"$(PYTHON)" bench/shadow_scale.py "$(BIN)" "$(SCORCH_CACHE)/bench-scale" $(or $(SHADOW_ROWS),2000000) $(or $(SHADOW_FILES),10) $(or $(SHADOW_BUDGET_MB),256)

# Quality + drift on DRIFT_ROWS x DRIFT_COLS (default 10M x 20): scorch drift next to Evidently.
bench-drift: build evidently
	"$(PYTHON)" bench/drift_bench.py "$(BIN)" "$(EVIDENTLY_VENV)/bin/python" "$(SCORCH_CACHE)/bench-drift" \
	  $(or $(DRIFT_ROWS),10000000) $(or $(DRIFT_COLS),20)

# A second S3-compatible server for the read benchmark: s3rver from npm (Node.js).
S3RVER := $(SCORCH_CACHE)/s3rver/node_modules/.bin/s3rver
s3rver:
	@if [ ! -x "$(S3RVER)" ]; then \
	  mkdir -p "$(SCORCH_CACHE)/s3rver" && \
	  npm install --prefix "$(SCORCH_CACHE)/s3rver" --no-audit --no-fund s3rver@3.7.1; \
	fi

bench-s3: setup s3-server s3rver
	cargo build --locked --example read_bench
	bench/s3_read.sh "$(CARGO_TARGET_DIR)/debug/examples/read_bench" "$(PYTHON)" "$(S3S_FS)" "$(S3RVER)" $(or $(GB),1)

# A real Azure Blob Storage emulator for the tests: Azurite from npm (3.35 runs on Node 20).
AZURITE := $(SCORCH_CACHE)/azurite/node_modules/.bin/azurite-blob
export SCORCH_AZURITE := $(AZURITE)
# Real Apache Airflow for the DAG factory's tests (airflow/requirements.txt).
airflow:
	@scripts/setup-airflow.sh "$(SCORCH_CACHE)/airflow-3"

azurite:
	@if [ ! -x "$(AZURITE)" ]; then \
	  command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }; \
	  echo "installing azurite 3.35.0 into $(SCORCH_CACHE)/azurite (once, about 30 s)"; \
	  mkdir -p "$(SCORCH_CACHE)/azurite" && npm install --prefix "$(SCORCH_CACHE)/azurite" --no-audit --no-fund --silent azurite@3.35.0; \
	fi

# Dependency policy (deny.toml): licenses, bans and sources offline; advisories
# where the RustSec database (on GitHub) can be fetched, and a plain notice where not.
CARGO_DENY := $(SCORCH_CACHE)/cargo-deny/bin/cargo-deny
# ADBC drivers (PostgreSQL, SQLite, Flight SQL, Snowflake, BigQuery) from PyPI's wheels.
adbc-drivers: setup
	@scripts/setup-adbc.sh "$(ADBC_DIR)" "$(PYTHON)"

deny:
	@if [ ! -x "$(CARGO_DENY)" ]; then \
	  echo "installing cargo-deny 0.20.2 into $(SCORCH_CACHE)/cargo-deny (once, about 5 minutes)"; \
	  CARGO_TARGET_DIR="$(SCORCH_CACHE)/cargo-deny-build" cargo install cargo-deny --version 0.20.2 --locked \
	    --root "$(SCORCH_CACHE)/cargo-deny" && rm -rf "$(SCORCH_CACHE)/cargo-deny-build"; \
	fi
	"$(CARGO_DENY)" --log-level error check licenses bans sources
	@if timeout 120 "$(CARGO_DENY)" --log-level off fetch db >/dev/null 2>&1; then \
	  "$(CARGO_DENY)" --log-level error check advisories; \
	else \
	  echo "cargo deny: advisories NOT checked: the RustSec database (github.com/RustSec/advisory-db) cannot be fetched from this machine"; \
	fi

test: setup deny pg-server s3-server azurite chromium airflow wheelhouse adbc-drivers nannyml
	cargo build --locked --bin scorch
	$(MAKE) --no-print-directory wheel-dev
	@# The binary users build carries no test hook (they are behind the test-hooks feature).
	@if strings "$(BIN)" | grep -q 'SCORCH_TEST_'; then \
	  echo "error: $(BIN) contains a test hook (SCORCH_TEST_*)"; exit 1; \
	else echo "no test hooks in $(BIN)"; fi
	cargo test --locked --no-fail-fast --features test-hooks

# The fast tier: the unit and property tests in src/ and the integration tests
# that need no service (no PostgreSQL, S3, Azurite, Airflow, Chromium, wheel):
# the layering, the docs, job validation, plans, errors and bad input.
FAST_TESTS := architecture:: docs:: errors:: bad_input:: plan:: completions:: k8s:: context::
test-fast: setup
	cargo test --locked --features test-hooks --lib
	cargo test --locked --features test-hooks --test it -- $(FAST_TESTS)

model: build data
	"$(PYTHON)" python/train_churn.py --scorch "$(BIN)" --data data/churn --out models/churn/1.0.0
	"$(PYTHON)" python/train_churn.py --scorch "$(BIN)" --data data/churn --out models/churn/2.0.0 \
	  --version 2.0.0 --arch wide_deep --epochs 10 --seed 11

# The Python package (py/): one abi3 wheel for Linux x86_64 whose `scorch` command
# and `import scorch` run the extension module, which uses the installed torch
# package's libtorch. `make wheel` is the release build; `make test` builds and
# installs a dev-profile wheel from the artifacts its own build made.
MATURIN := $(VENV)/bin/maturin
WHEEL_FLAGS := --locked --compatibility manylinux_2_35 --auditwheel skip -i "$(PYTHON)"
wheel: setup
	cd py && "$(MATURIN)" build --release --strip $(WHEEL_FLAGS) --out ../dist
	@ls -l dist/scorch-*.whl

DEV_WHEELS := $(CARGO_TARGET_DIR)/wheels-dev
export SCORCH_WHEEL_DIR := $(DEV_WHEELS)
wheel-dev: setup
	rm -rf "$(DEV_WHEELS)"
	cd py && "$(MATURIN)" build --profile dev --strip $(WHEEL_FLAGS) --out "$(DEV_WHEELS)"

# The wheel tests alone (tests/it/wheel.rs: the tutorial, parity, the manylinux tag) on
# the wheel in SCORCH_WHEEL_DIR: the dev wheel by default; the release wheel with
# `make wheel test-wheel SCORCH_WHEEL_DIR=dist`.
test-wheel: setup wheelhouse
	cargo test --locked --features test-hooks --test it wheel::

# numpy and pyarrow wheels for the wheel test's fresh venv (pip installs from here, offline),
# the setuptools torch requires (newer than the one a venv starts with), and pandas
# for the test that a pandas frame comes back as one.
WHEELHOUSE := $(SCORCH_CACHE)/wheelhouse
WHEELHOUSE_PKGS := numpy==2.4.6 pyarrow==26.0.1 setuptools==84.2.1 pandas==3.1.1
export SCORCH_WHEELHOUSE := $(WHEELHOUSE)
wheelhouse: setup
	@if ! grep -qxF "$(WHEELHOUSE_PKGS)" "$(WHEELHOUSE)/.done" 2>/dev/null; then \
	  mkdir -p "$(WHEELHOUSE)" && \
	  "$(VENV)/bin/pip" download --quiet --disable-pip-version-check -d "$(WHEELHOUSE)" $(WHEELHOUSE_PKGS) && \
	  echo "$(WHEELHOUSE_PKGS)" > "$(WHEELHOUSE)/.done"; \
	fi

# The Python package, installed into the build venv in place (for python/train_churn.py).
develop: setup
	cd py && "$(MATURIN)" develop --profile dev --locked

# The runtime image (deploy/container/Containerfile): not part of `make test`.
# The base is Debian 12 made by mmdebstrap from Debian's packages and imported
# into podman (no registry); wheels for torch and its dependencies are
# downloaded once into the cache; the build itself runs without network.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
IMAGE_DIR := $(SCORCH_CACHE)/image
IMAGE ?= localhost/scorch:$(VERSION)
PODMAN := scripts/podman.sh
image-tools:
	@if ! command -v podman >/dev/null || ! command -v mmdebstrap >/dev/null || ! command -v runc >/dev/null; then \
	  echo "installing podman, runc and mmdebstrap (apt-get install -y podman runc mmdebstrap)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc mmdebstrap >/dev/null; \
	fi

image-base: image-tools
	@mkdir -p "$(IMAGE_DIR)"
	@if [ ! -f "$(IMAGE_DIR)/debian-bookworm.tar" ]; then \
	  echo "mmdebstrap: Debian 12 minbase + python3, python3-venv, ca-certificates (once, about a minute)"; \
	  rm -rf "$(IMAGE_DIR)/debian-bookworm.tar" "$(IMAGE_DIR)/debian-bookworm.tar.tmp" && \
	  mmdebstrap --quiet --format=tar --variant=minbase --include=python3,python3-venv,ca-certificates \
	    bookworm "$(IMAGE_DIR)/debian-bookworm.tar.tmp" && \
	  mv "$(IMAGE_DIR)/debian-bookworm.tar.tmp" "$(IMAGE_DIR)/debian-bookworm.tar"; \
	fi
	@podman image exists localhost/scorch-base:bookworm || \
	  podman import "$(IMAGE_DIR)/debian-bookworm.tar" localhost/scorch-base:bookworm

image-wheels: setup
	@if [ ! -f "$(IMAGE_DIR)/wheels/.done" ]; then \
	  echo "downloading torch 2.13.0 and its dependencies' wheels into $(IMAGE_DIR)/wheels (once, 2.7 GB)"; \
	  mkdir -p "$(IMAGE_DIR)/wheels" && \
	  "$(VENV)/bin/pip" download --quiet --disable-pip-version-check -d "$(IMAGE_DIR)/wheels" \
	    torch==2.13.0 numpy==2.4.6 pyarrow==26.0.1 && touch "$(IMAGE_DIR)/wheels/.done"; \
	fi

# IMAGE_WHEEL: the scorch wheel to put in the image (default: the release wheel
# `make wheel` builds).
IMAGE_WHEEL ?= $(firstword $(wildcard dist/scorch-$(VERSION)-*.whl))
image: image-base image-wheels
	@if [ -z "$(IMAGE_WHEEL)" ]; then $(MAKE) --no-print-directory wheel; fi
	rm -rf "$(IMAGE_DIR)/context" && mkdir -p "$(IMAGE_DIR)/context/wheels" "$(IMAGE_DIR)/context/project"
	ln "$(IMAGE_DIR)"/wheels/*.whl "$(IMAGE_DIR)/context/wheels/"
	cp "$(or $(IMAGE_WHEEL),$(firstword $(wildcard dist/scorch-$(VERSION)-*.whl)))" "$(IMAGE_DIR)/context/wheels/"
	cp -r jobs preprocess schemas sql models profiles.yaml "$(IMAGE_DIR)/context/project/"
	time $(PODMAN) build --network=none -f deploy/container/Containerfile \
	  --build-arg SCORCH_WHEEL_SHA256=$$(cat "$(IMAGE_DIR)"/context/wheels/scorch-*.whl | sha256sum | cut -c1-64) \
	  -t "$(IMAGE)" "$(IMAGE_DIR)/context"
	@podman image ls "$(IMAGE)"

# The example job inside the image (the data mounted read-only, the output in the
# cache), then the Airflow DAG factory running its tasks in the image (SCORCH_IMAGE).
image-demo: image data airflow
	rm -rf "$(IMAGE_DIR)/output" && mkdir -p "$(IMAGE_DIR)/output"
	$(PODMAN) run --rm --user "$$(id -u):$$(id -g)" -v "$(CURDIR)/data:/project/data:ro" -v "$(IMAGE_DIR)/output:/project/output" \
	  "$(IMAGE)" run jobs/churn_daily.yaml --date $(DEMO_DATE) --no-progress
	@echo "Scored inside the image: $(IMAGE_DIR)/output/churn_scores/ds=$(DEMO_DATE)/"
	scripts/image-airflow.sh "$(SCORCH_AIRFLOW)" "$(IMAGE)"

lint:
	cargo fmt --all -- --check
	cargo clippy --locked --all-targets --features test-hooks -- -D warnings
	cargo clippy --locked -p scorch-python -- -D warnings

clean-output:
	rm -rf output

# Fuzzing (cargo-fuzz, libFuzzer): not part of `make test`. Each target runs
# FUZZ_SECONDS (default 600) from the seeds in fuzz/seeds/<target> plus the corpus
# kept in the cache; a crash stops it and leaves the input in fuzz/artifacts/.
FUZZ_SECONDS ?= 600
FUZZ_TARGETS := job_spec preprocess_spec contract template data
FUZZ_TARGET_DIR := $(SCORCH_CACHE)/fuzz-target
# The fuzz binaries link libtorch (through the scorch library) without scorch's rpath.
TORCH_LIB = $(firstword $(wildcard $(VENV)/lib/python3*/site-packages/torch/lib))
fuzz-build: setup
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.2 --locked
	cd fuzz && RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$(FUZZ_TARGET_DIR) cargo fuzz build -s none

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p "$(SCORCH_CACHE)/fuzz-corpus/$$t" "fuzz/artifacts/$$t" "fuzz/seeds/$$t"; \
	  echo "== fuzzing $$t for $(FUZZ_SECONDS) s"; \
	  (cd fuzz && RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$(FUZZ_TARGET_DIR) LD_LIBRARY_PATH=$(TORCH_LIB) \
	    cargo fuzz run -s none $$t \
	    "$(SCORCH_CACHE)/fuzz-corpus/$$t" seeds/$$t -- -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	    -rss_limit_mb=4096 -print_final_stats=1) || exit 1; \
	done
