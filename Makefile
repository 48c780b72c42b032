# nefeli: `make run` and `make test` do all set-up on a fresh Debian machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.nefeli-installed
NATIVE_SRC := $(wildcard native/*.c native/*.h native/blake3/*.c native/blake3/*.h) native/build.py
NATIVE_STAMP := native/.built
DATA ?= var/nefeli

.PHONY: all setup native peers test run bench clean

all: setup

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml setup.py | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

$(NATIVE_STAMP): $(STAMP) $(NATIVE_SRC)
	$(PY) -m native.build
	touch $@

setup: $(STAMP) $(NATIVE_STAMP)

native: $(NATIVE_STAMP)

# Real peers for the integration tests; only root can apt-get them.
peers:
	@if [ "$$(id -u)" = 0 ]; then scripts/install-test-peers; \
	else echo "peers: not root, integration tests needing peers will skip"; fi

test: setup peers
	$(PY) -m pytest $(PYTEST_ARGS)

run: setup
	$(VENV)/bin/nefeli-blockd --data $(DATA)

bench: setup
	$(PY) -m pytest benchmarks -o python_files='bench_*.py' --benchmark-enable --benchmark-only $(PYTEST_ARGS)
	for s in benchmarks/*_compare.py; do $(PY) $$s || exit 1; done

clean:
	rm -rf build native/_core*.so $(NATIVE_STAMP)
