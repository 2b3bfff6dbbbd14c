# Two commands: `make run` sets up and starts the portal; `make test` runs the whole suite.

# The newest usable Python 3.11+ (3.12+ gets Django 6.1; 3.11 gets the 5.2 LTS). As root, the portal
# runs hosted code as users of their own, which run the portal's interpreter too (the sandbox's
# wrapper, a gateway server, pip): so first one that an unprivileged user can run (not one under
# root's private home, as pyenv's), then any.
PYTHONS := python3.12 python3.13 python3 python3.11 python /usr/bin/python3 /usr/local/bin/python3
AS_NOBODY := $(shell [ "$$(id -u)" = 0 ] && command -v setpriv >/dev/null && echo setpriv --reuid=65534 --regid=65534 --clear-groups)
PYTHON ?= $(shell for p in $(PYTHONS); do \
	$(AS_NOBODY) $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo $$p; exit; }; done; \
	for p in $(PYTHONS); do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python

# A site without internet names its package index or wheel folder once (PORTAL_PACKAGE_INDEX,
# PORTAL_PACKAGE_FIND_LINKS: docs/operations.md); the portal's own virtualenv is built from it too.
# Exported as pip's own variables, so that an index URL with a token is never in a command line
# (make prints each recipe's, and ps shows them). The portal gives them to its builds itself.
ifeq ($(strip $(PORTAL_PACKAGE_INDEX)),none)
export PIP_NO_INDEX := 1
else ifneq ($(strip $(PORTAL_PACKAGE_INDEX)),)
export PIP_INDEX_URL := $(strip $(PORTAL_PACKAGE_INDEX))
endif
ifneq ($(strip $(PORTAL_PACKAGE_FIND_LINKS)),)
export PIP_FIND_LINKS := $(strip $(PORTAL_PACKAGE_FIND_LINKS))
endif

.PHONY: run test bench setup lint clean-var check-python

check-python:
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is needed: install it, or run make PYTHON=/path/to/python3.11"; exit 1; }

$(PY): | check-python
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(VENV)/.installed-bench: requirements-bench.txt $(VENV)/.installed-dev
	$(PY) -m pip install --quiet -r requirements-bench.txt
	touch $@

setup: $(VENV)/.installed
	$(PY) manage.py migrate --noinput
	$(PY) manage.py ensure_admin
	$(PY) manage.py collectstatic --noinput --verbosity 0

# The launcher takes a lock in var/ first, then does what `setup` does and starts the portal.
run: $(VENV)/.installed
	exec $(PY) -m portal.launcher

# The suite runs in TEST_WORKERS processes (pytest-xdist), each a suite of its own (its own var/,
# database, Redis and Celery workers), one test file per process at a time: most of a test's time
# is spent waiting for real processes and sockets, so three at once on two cores take about half
# the time of one after the other. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 3
# pytest's exit code 5 means it ran no test: a broken selection or collection, never a pass.
# Python's bytecode cache is on for the suite whatever the environment says (PYTHONDONTWRITEBYTECODE):
# each pytest process rewrites and compiles every test module, and the suite starts hundreds of
# Python processes (Celery workers, keepers, servers, manage.py) that import the portal's modules;
# without the cache each compiles them again (a pytest process's collection: 9 s of CPU, 3 with it).
test: $(VENV)/.installed-dev
	@echo "$(PY) -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)"; \
	env -u PYTHONDONTWRITEBYTECODE $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc = 5 ]; then echo "make test: pytest ran no test (exit code 5); check PYTEST_ARGS, testpaths in pytest.ini and the test file names" >&2; fi; \
	exit $$rc

bench: $(VENV)/.installed-bench
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
