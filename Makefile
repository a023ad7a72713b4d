# 平安马甲 — `make run` sets everything up and starts the service; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app app
HOST ?= 127.0.0.1
PORT ?= 5000
PUBLIC_BASE_URL ?= http://$(HOST):$(PORT)
export PUBLIC_BASE_URL

.PHONY: install install-dev run serve migrate lint test translations screenshots lighthouse clean debian-packages deploy-check faults

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	@$(PYTHON) -m venv $(VENV) || { echo "python3 -m venv failed: on Debian run 'apt-get install python3-venv'"; exit 1; }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	@touch $@

$(VENV)/.dev-installed: requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $@

MO := translations/en/LC_MESSAGES/messages.mo
$(MO): translations/en/LC_MESSAGES/messages.po $(VENV)/.installed
	$(VENV)/bin/pybabel compile -d translations

install: $(VENV)/.installed $(MO)

install-dev: $(VENV)/.dev-installed

migrate: install
	$(FLASK) db upgrade

## run: install, migrate, load the demo programme into an empty embedded database, then run the
## scheduler, the outbox sender (always), the bot (when TELEGRAM_BOT_TOKEN is set) and the web on $(PORT) until Ctrl-C
run: migrate
	@scripts/debian-packages.sh run
	$(FLASK) demo --auto
	@trap 'kill $$(jobs -p) 2>/dev/null' INT TERM EXIT; \
	$(PY) -m scheduler & \
	$(PY) -m delivery & \
	if [ -n "$$TELEGRAM_BOT_TOKEN" ]; then echo "Starting the Telegram bot"; $(PY) -m bot & \
	  else echo "Telegram bot off (set TELEGRAM_BOT_TOKEN to start it); messages wait in the outbox and the web inbox."; fi; \
	$(FLASK) run --host $(HOST) --port $(PORT)

## serve: production-style server (gunicorn, 2 workers) — put an HTTPS reverse proxy in front
## (and set TRUSTED_PROXY_HOPS=1). Rate limits are shared through Redis: RATELIMIT_STORAGE_URI if set,
## else redis://127.0.0.1:6379/0 when it answers, else per-worker memory (with a warning).
serve: migrate
	@if [ -z "$$RATELIMIT_STORAGE_URI" ]; then \
	  if $(PY) -c 'import redis; redis.Redis(host="127.0.0.1", port=6379, socket_timeout=1).ping()' 2>/dev/null; then \
	    echo "Rate limits: Redis at 127.0.0.1:6379"; export RATELIMIT_STORAGE_URI=redis://127.0.0.1:6379/0; \
	  else echo "WARNING: Redis is not answering on 127.0.0.1:6379; each worker counts rate limits on its own (set RATELIMIT_STORAGE_URI)" >&2; fi; \
	fi; \
	exec $(VENV)/bin/gunicorn --config gunicorn.conf.py --workers 2 --bind $(HOST):$(PORT) 'app:create_app()'

## lint: undefined names, unused imports and syntax errors (pyflakes rules), and bandit's security
## checks at medium severity and above (bandit.yaml says what is excluded and why)
lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check --select F,E9 --exclude migrations,.venv .
	$(VENV)/bin/bandit -q -c bandit.yaml -r . --severity-level medium

## test-tools: npm test tools (axe-core, injected into pages by the accessibility tests)
node_modules/.installed: package.json package-lock.json
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund --silent && touch $@; \
	  else echo "npm not found: the accessibility tests will be skipped (apt-get install nodejs npm)"; fi

## test: install test dependencies (and, as root, the Debian packages the tests need), lint, and run
## the suite (TEST_DATABASE_URL selects PostgreSQL). Not root: the install line is printed and the
## tests that need a missing package are skipped with that reason.
test: lint $(MO)
	@scripts/debian-packages.sh test
	@$(MAKE) --no-print-directory node_modules/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

## deploy-check: the shipped deploy/ files for real: the units' ExecStart commands as the service
## user behind nginx on 127.0.0.1 with a self-signed certificate, checked over HTTPS (root only)
deploy-check: $(VENV)/.dev-installed $(MO)
	@scripts/debian-packages.sh deploy
	$(PY) deploy/check.py

## faults: PostgreSQL restarted mid-burst (a throwaway cluster), Bot API down, scheduler killed,
## SQLite full or read-only: nothing acknowledged is lost, nothing is done twice
faults: $(VENV)/.dev-installed $(MO)
	@scripts/debian-packages.sh faults
	$(PY) -m pytest -m faults tests/faults $(PYTEST_ARGS)

## screenshots: rewrite the README's phone screenshots (docs/screenshots/*.png) from the browser test
screenshots: $(MO) $(VENV)/.dev-installed
	SCREENSHOTS=1 $(PY) -m pytest -q tests/e2e/test_readme_screenshots.py

## lighthouse: Lighthouse 12 mobile scores of the scan page (a benchmark: docs/performance.md)
lighthouse: $(MO) $(VENV)/.installed
	npm ci --prefix bench/lighthouse --no-audit --no-fund --silent
	$(PY) bench/lighthouse.py --runs 3

## translations: extract strings and merge them into the English catalogue (then translate the new
## entries in translations/en/LC_MESSAGES/messages.po and run `make install`)
translations: install
	$(VENV)/bin/pybabel extract -F babel.cfg -o translations/messages.pot app.py cli services web bot scheduler templates
	$(VENV)/bin/pybabel update -i translations/messages.pot -d translations -l en
	$(VENV)/bin/pybabel compile -d translations

clean:
	rm -rf $(VENV) .pytest_cache node_modules
