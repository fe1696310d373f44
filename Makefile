# Two commands for a new user (see README): `make demo` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
VENV_NEWEST ?= .venv-newest
PYTHON ?= python3

.PHONY: env demo bench test test-notebooks test-pytest test-newest export clean-nbs

$(VENV)/.installed: requirements-dev.txt setup.py settings.ini
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	$(VENV)/bin/pip install -q --no-deps -e .
	touch $@

$(VENV_NEWEST)/.installed: requirements-newest.txt setup.py settings.ini
	$(PYTHON) -m venv $(VENV_NEWEST)
	$(VENV_NEWEST)/bin/pip install -q -r requirements-newest.txt
	$(VENV_NEWEST)/bin/pip install -q --no-deps -e .
	touch $@

env: $(VENV)/.installed

# The main job: a short fit on generated data with each callback
demo: env
	$(VENV)/bin/python examples/demo_fit.py

# Every test: all notebooks under nbdev_test, the pytest suite, and the pytest suite again with the newest fastai
test: test-notebooks test-pytest test-newest

test-notebooks: env
	$(VENV)/bin/nbdev_test --n_workers 2 --do_print

test-pytest: env
	$(VENV)/bin/python -m pytest tests -q -p no:cacheprovider

test-newest: $(VENV_NEWEST)/.installed
	$(VENV_NEWEST)/bin/python -c "import fastai, fastcore; print('newest env: fastai', fastai.__version__, 'fastcore', fastcore.__version__)"
	$(VENV_NEWEST)/bin/python -m pytest tests -q -p no:cacheprovider

# Regenerate the package from the notebooks and strip notebook noise (run before committing)
export: env
	$(VENV)/bin/nbdev_export
	$(VENV)/bin/nbdev_clean

# --- benchmark (issue 7): not part of `make test` ---
bench: env
	$(VENV)/bin/pip install -q -r requirements-bench.txt
	$(VENV)/bin/python bench/bench_augment.py --out bench/results/cpu.md
