# Two commands for a new user: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
VENDOR := static/vendor/socket.io.min.js static/vendor/markdown-it.min.js

.PHONY: install run test lint format clean

install: $(VENV)/.installed $(VENDOR)
	$(PY) -m flask --app app init-db

run: install
	$(PY) app.py

test: install $(VENV)/.installed-dev
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt requirements.txt $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# The browser client comes from npm and is copied next to our own scripts,
# so a phone on a LAN without internet still gets every asset from the chat
# (socket.io-client, and markdown-it as an ES module for static/js/message_body.js).
$(VENDOR) &: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p static/vendor
	cp node_modules/socket.io-client/dist/socket.io.min.js static/vendor/
	cp node_modules/socket.io-client/dist/socket.io.min.js.map static/vendor/
	cp node_modules/markdown-it/dist/browser/markdown-it.esm.min.mjs static/vendor/markdown-it.min.js
	cp node_modules/markdown-it/dist/browser/markdown-it.esm.min.mjs.map static/vendor/

clean:
	rm -rf $(VENV) node_modules static/vendor

# Benchmarks of the chat beside a bare relay (bench/README.md): a short run in under
# 3 minutes; `make bench BENCH_ARGS=--full` for the full figures.
.PHONY: bench
bench: install $(VENV)/.installed-bench
	$(PY) -m bench.run $(BENCH_ARGS)

$(VENV)/.installed-bench: bench/requirements.txt $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	touch $@

# Several workers behind nginx on this machine, sharing Redis (docs/deploy.md):
# one per core by default; `WORKERS=4 PORT=8000 make cluster` to choose.
.PHONY: cluster
cluster: install
	$(PY) deploy/cluster.py
