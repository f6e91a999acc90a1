# Hookyard: `make up` runs the whole platform locally, `make test` runs the tests.
# Both install what they need first (uv, the locked dependencies, RabbitMQ).

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install up down status test lint bench bench-deps bench-memory lock clean openapi screenshots image cli

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

# The lock file is the source of truth: --locked fails if pyproject.toml and
# uv.lock disagree instead of silently re-resolving.
$(VENV)/.installed: pyproject.toml uv.lock $(UV)
	$(UV) sync --locked --python $(PYTHON)
	touch $@

install: $(VENV)/.installed

up: install
	$(VENV)/bin/python -m hookyard_cli.dev up

down:
	@if [ -x $(VENV)/bin/python ]; then $(VENV)/bin/python -m hookyard_cli.dev down; fi

status: install
	$(VENV)/bin/hookyard status

# The command-line tools the tests need first (tests/tools.py: apt-get only for what is missing).
test: install
	$(VENV)/bin/python tests/tools.py
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# The style and type gates, at zero findings: what CI runs before the tests.
LINTED := libs services cli bench tests
lint: install
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy

# The committed copy of the API's OpenAPI document, rebuilt from the route table.
openapi: install
	$(VENV)/bin/python -m hookyard_ingest.spec > docs/openapi.json

# The container image of every service (Dockerfile), with Docker or else Podman. The dev
# overlay runs `hookyard:dev`; for a cluster, tag it for your registry and push it
# (deploy/k8s/README.md): make image IMAGE=registry.example.com/hookyard:0.1.0
IMAGE ?= hookyard:dev
CONTAINER_ENGINE ?= $(shell command -v docker || command -v podman || echo docker)
image:
	$(CONTAINER_ENGINE) build --tag $(IMAGE) .

# The console's pictures in docs/console/, retaken by its browser tests.
screenshots: install
	HOOKYARD_SCREENSHOTS=docs $(VENV)/bin/python -m pytest -q tests/console

lock: $(UV)
	$(UV) lock

# The CLI on its own (cli/pyproject.toml): a wheel in dist/ that installs anywhere with only
# the CLI's dependencies (`pipx install dist/hookyard_cli-*.whl`; from a clone, `pipx install ./cli`).
cli: $(UV)
	$(UV) build --wheel cli -o dist

clean: down
	rm -rf .hookyard $(VENV) $(TOOLS)

# The bench group (the Celery peer, py-spy) goes in beside the locked environment, never
# into the one `make test` and `make up` install. Every script appends its verdicts to one
# summary, printed last: each figure of issue 18 with its target, met or not.
BENCH_SUMMARY := .hookyard/bench-summary.jsonl
bench-deps: install
	$(UV) sync --locked --inexact --group bench --python $(PYTHON)

bench: bench-deps
	mkdir -p .hookyard && rm -f $(BENCH_SUMMARY)
	HOOKYARD_BENCH_SUMMARY=$(BENCH_SUMMARY) $(VENV)/bin/python bench/ingest_bench.py $(BENCH_ARGS)
	HOOKYARD_BENCH_SUMMARY=$(BENCH_SUMMARY) $(VENV)/bin/python bench/ingest_bench.py --workers 2 --routes in $(BENCH_ARGS)
	HOOKYARD_BENCH_SUMMARY=$(BENCH_SUMMARY) $(VENV)/bin/python bench/dispatch_bench.py
	HOOKYARD_BENCH_SUMMARY=$(BENCH_SUMMARY) $(VENV)/bin/python bench/backlog_memory.py
	$(VENV)/bin/python bench/edge_cpu_bench.py --http
	$(VENV)/bin/python bench/targets.py $(BENCH_SUMMARY)

bench-memory: bench-deps
	$(VENV)/bin/python bench/backlog_memory.py
