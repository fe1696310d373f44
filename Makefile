# The README's two commands for a new user: `make tutorial` (the main job) and then `make test` (every test).
# The jobs (tutorial, segmentation, bench, gpu-check) write under runs/, which git ignores, so that running them never changes a
# tracked file; the published results that the pages show (results/, bench/results/) change only on purpose, with the --out that
# each page names. ARGS passes options to a job: `make tutorial ARGS='--epochs 8 --seeds 0 1 2 3 4'`.
SHELL := /bin/bash
VENV ?= .venv
VENV_NEWEST ?= .venv-newest
PYTHON ?= python3
ARGS ?=

.PHONY: env demo tutorial bench docs test test-notebooks test-pytest test-newest test-docs test-wheel export clean-nbs

$(VENV)/.installed: requirements-dev.txt setup.py settings.ini
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	$(VENV)/bin/pip install -q --no-deps -e .
	touch $@

# torch's CUDA build (5.5 GB) is hard-linked from $(VENV) rather than installed a second time (tools/share_torch.py)
$(VENV_NEWEST)/.installed: requirements-newest.txt setup.py settings.ini | $(VENV)/.installed
	$(PYTHON) -m venv $(VENV_NEWEST)
	$(VENV)/bin/python tools/share_torch.py $(VENV_NEWEST)
	$(VENV_NEWEST)/bin/pip install -q -r requirements-newest.txt
	$(VENV_NEWEST)/bin/pip install -q --no-deps -e .
	touch $@

env: $(VENV)/.installed

# A one-minute fit of each callback on generated images
demo: env
	$(VENV)/bin/python examples/demo_fit.py

# The course's main job (issue 3): fine-tune roses vs tulips with each augmentation over several seeds; writes runs/tutorial/
tutorial: env
	$(VENV)/bin/python -m mixaug_fastai.course.tutorial $(ARGS)

# The segmentation course's main job (issue 13): a U-Net on CamVid street scenes with each augmentation over several seeds; writes runs/segmentation/
.PHONY: segmentation
segmentation: env
	$(VENV)/bin/python -m mixaug_fastai.course.segmentation $(ARGS)

# The detection course's main job (issue 19): an FCOS person detector on COCO photos (coco128) with each augmentation over several seeds;
# writes runs/detection/ (ignored by git; the published results are results/detection/, written only with ARGS='--out results/detection')
.PHONY: detection
detection: env
	$(VENV)/bin/python -m mixaug_fastai.course.detection $(ARGS)

# Every test: all notebooks under nbdev_test, the pytest suite, the pytest suite again with the newest fastai, the docs site, and the wheel in a fresh venv
test: test-notebooks test-pytest test-newest test-docs test-wheel

# The comparison notebook's real peers (TensorFlow/Keras, Paddle) in the development environment
$(VENV)/.compare-installed: requirements-compare.txt $(VENV)/.installed
	$(VENV)/bin/pip install -q -r requirements-compare.txt
	$(VENV)/bin/pip check
	touch $@

test-notebooks: env $(VENV)/.compare-installed
	$(VENV)/bin/nbdev_test --n_workers 2 --do_print

test-pytest: env
	$(VENV)/bin/python -m pytest tests -q -rs -p no:cacheprovider

test-newest: $(VENV_NEWEST)/.installed
	$(VENV_NEWEST)/bin/python -c "import fastai, fastcore; print('newest env: fastai', fastai.__version__, 'fastcore', fastcore.__version__)"
	$(VENV_NEWEST)/bin/python -m pytest tests -q -rs -p no:cacheprovider

# KaTeX from the npm registry (package-lock.json), served with the offline site so that its math shows without a CDN
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

# The docs site in _docs/ and README.md: nbdev_docs when quarto is on PATH, else nbdev_proc_nbs + nbconvert (tools/build_docs.py)
docs: env node_modules/.package-lock.json
	$(VENV)/bin/python tools/build_docs.py

# Checks on the built site; headless Chromium (Debian's package, installed here if missing) opens every page at 1400 and
# 420 px and measures it (screenshots in build/docs-screenshots/)
test-docs: docs
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)
	$(VENV)/bin/python tools/check_docs.py

# The package as a user installs it without a clone: build the sdist and wheel (python -m build), install the wheel into a
# fresh venv with only its declared dependencies (fastai, torch; torch's build hard-linked from $(VENV), tools/share_torch.py), fit one batch with each callback there
test-wheel: env
	$(VENV)/bin/pip install -q build
	$(VENV)/bin/python tools/check_wheel.py

# Regenerate the package from the notebooks and strip notebook noise (run before committing)
export: env
	$(VENV)/bin/nbdev_export
	$(VENV)/bin/nbdev_clean

# --- benchmark (issue 7): not part of `make test`; writes runs/bench/cpu.md (the published report: --out bench/results/cpu.md) ---
bench: env
	$(VENV)/bin/pip install -q -r requirements-bench.txt
	$(VENV)/bin/python bench/bench_augment.py $(ARGS)

# On a CUDA machine, within about 8 minutes: the benchmark's GPU column with host-device syncs counted, and the tutorial's
# GPU setting (224 px, 1 + 8 epochs, 5 seeds, mixed precision); writes runs/gpu/. Refuses to run without CUDA.
.PHONY: gpu-check
gpu-check: env
	$(VENV)/bin/pip install -q -r requirements-bench.txt
	$(VENV)/bin/python tools/gpu_check.py $(ARGS)

# --- mutation testing (issue 21): not part of `make test`; all 2,342 mutants of the three modules took 18 minutes on 2 cores (2026-12-07) ---
# mutmut (requirements-mutants.txt) mutates a copy of the package in mutants/ and, for each mutant, runs the library's tests
# (the files named in pyproject.toml's [tool.mutmut]) that call the mutated function; `make mutants MUTANTS='mixaug_fastai.loss*'` runs one module.
# Results are kept in mutants/ between runs; the survivors and the score are listed at the end.
MUTANTS ?= mixaug_fastai.*
.PHONY: mutants
mutants: env
	$(VENV)/bin/pip install -q -r requirements-mutants.txt
	# one torch thread: mutmut forks a process per mutant after running the tests once, and a fork of a process whose OpenMP threads
	# have started hangs in the first parallel op (every mutant then looked like a timeout)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(VENV)/bin/mutmut run "$(MUTANTS)"
	$(VENV)/bin/python tools/mutants_summary.py "$(MUTANTS)"
