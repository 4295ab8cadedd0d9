# Two commands do everything on a fresh machine: `make run` and `make test`.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
CONFIG  ?= configs/mirocals.yaml
PYTEST_ARGS ?=

.PHONY: run test test-fast lint bench bench-fit clean-venv browser

$(PY):
	@PYBIN="$$(bash .ci/find-python)" || exit 1; \
	echo "creating $(VENV) with $$PYBIN"; \
	"$$PYBIN" -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/trialbayes run $(CONFIG)

test: $(STAMP) browser lint    # the whole suite (what CI runs): <= 15 min on 2 cores
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)            # ruff (E, F, I, UP, public docstrings) and mypy on results/ and config/
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/mypy src/trialbayes/results src/trialbayes/config

test-fast: $(STAMP)       # unit tests, tiny models, the shared small run: ~2.5 min on 2 cores
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

browser:  # headless Chromium for the report.html check (installs only as root with apt-get)
	@bash .ci/install-browser

bench: $(STAMP)           # issue 19's ratios beside their targets, ~6 min on a quiet 2-core machine
	$(PY) bench/bench_speed.py

bench-fit: $(STAMP)       # single fits at N = 220 ... 100 000 by likelihood form
	$(PY) bench/bench_fit.py

clean-venv:
	rm -rf $(VENV)
