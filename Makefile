# make demo: set up .venv, check + build the example specs, train LeNet-5 on digits
# make test: set up .venv and run the test suite (what CI runs)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup demo test fuzz bench lint schema clean graphviz images

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP) graphviz
	@echo "== netspec check: every example spec, no torch import =="
	$(PY) -m netspec check specs/*.yaml
	@echo
	@echo "== netspec render: diagrams with the shape on every edge (runs/demo/*.svg) =="
	@mkdir -p runs/demo
	$(PY) -m netspec render specs/zoo/tutorial_cifar10.yaml -o runs/demo/tutorial_cifar10.svg
	$(PY) -m netspec render specs/zoo/resnet18.yaml --depth 2 -o runs/demo/resnet18.svg
	$(PY) -m netspec report specs/zoo/resnet18.yaml --depth 2 -o runs/demo/resnet18.html
	@$(PY) -m netspec render specs/broken/tutorial_in_features.yaml -o runs/demo/broken.svg || echo "(exit status $$?: the broken layer is drawn red, as expected)"
	@echo
	@echo "== netspec check on the broken examples: positioned errors (exit 1 expected) =="
	@$(PY) -m netspec check specs/broken/tutorial_in_features.yaml || echo "(exit status $$?: the error was found, as expected)"
	@echo
	@echo "== netspec build: torch modules, dry forward pass agrees with the static shapes =="
	@for f in specs/*.yaml; do $(PY) -m netspec build $$f | tail -n 1 || exit 1; done
	@echo
	@echo "== netspec train: LeNet-5 on the 8x8 digits (CPU, no download), eval, plot =="
	@start=$$($(PY) -c "import time; print(time.time())"); \
	$(PY) -m netspec train specs/lenet5_digits.yaml --progress plain --runs runs/demo || exit 1; \
	run=$$(ls -td runs/demo/LeNet5Digits/*/ | head -n 1); run=$${run%/}; \
	$(PY) -m netspec eval specs/lenet5_digits.yaml --weights $$run/best.pt || exit 1; \
	$(PY) -m netspec plot $$run -o $$run/curves.png || exit 1; \
	$(PY) -c "import json, sys, time; a = json.load(open(sys.argv[1]))['test_acc']; \
	print(f'digits: test accuracy {100 * a:.2f}% (target 97%), train + eval + plot in \
	{time.time() - float(sys.argv[2]):.1f} s'); sys.exit(a < 0.97)" $$run/summary.json $$start

# Graphviz's dot lays out `netspec render` diagrams: installed here where we can
graphviz:
	@command -v dot >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Graphviz (apt-get install graphviz)"; \
	    (apt-get install -y -qq graphviz >/dev/null 2>&1 || \
	     (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq graphviz >/dev/null 2>&1)) || true; \
	  elif command -v brew >/dev/null 2>&1; then brew install graphviz || true; \
	  fi; \
	  command -v dot >/dev/null 2>&1 || echo "Graphviz's dot is missing: netspec render writes .dot files only; apt-get install graphviz / brew install graphviz / conda install -c conda-forge graphviz"; }

# the diagrams in README.md
images: $(STAMP) graphviz
	$(PY) -m netspec render specs/zoo/tutorial_cifar10.yaml -o docs/img/tutorial_cifar10.png
	$(PY) -m netspec render specs/zoo/resnet18.yaml --depth 1 -o docs/img/resnet18_depth1.png
	$(PY) -m netspec render specs/zoo/resnet18.yaml --depth 2 -o docs/img/resnet18_depth2.png
	$(PY) -m netspec render specs/zoo/googlenet.yaml --compact -o docs/img/googlenet_compact.png
	$(PY) -m netspec render specs/zoo/unet.yaml --depth 1 -o docs/img/unet_depth1.png

# the suite CI runs: every test, a few minutes on 2 cores
test: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q -n 2 -p no:cacheprovider

# long differential runs against torch (100,000 drawn cases per property),
# then the seeded mutation fuzzer over every spec in specs/ (100,000 mutants; the seed is
# printed, NETSPEC_FUZZ_SEED=N picks another), then the importer over all of timm's 54-model
# sample, torchvision's 9 video and 6 segmentation models and its big Swins (make test runs a
# spread of them), then the wheel installed into a fresh venv and run from another folder
# (make test checks the wheel's files)
fuzz: $(STAMP)
	NETSPEC_FUZZ_EXAMPLES=100000 $(PY) -m pytest -q -n 2 -p no:cacheprovider \
	  tests/ops/test_differential_spatial.py tests/ops/test_differential_layers.py tests/ops/test_differential_merge.py
	@NETSPEC_FUZZ_MUTANTS=100000 $(PY) -c "import sys; sys.path.insert(0, 'tests'); \
	import fuzz_specs as f; print(f'mutation fuzzer: NETSPEC_FUZZ_SEED={f.SEED}, {f.MUTANTS:,} mutants')"
	NETSPEC_FUZZ_MUTANTS=100000 $(PY) -m pytest -q -n 2 -p no:cacheprovider tests/test_fuzz.py
	NETSPEC_IMPORT_COVERAGE=all $(PY) -m pytest -q -n 2 -p no:cacheprovider \
	  tests/importer/test_import_coverage_timm.py tests/importer/test_import_coverage.py
	NETSPEC_INSTALLED_PACKAGE=1 $(PY) -m pytest -q -p no:cacheprovider \
	  tests/tutorial/test_install_and_start_from_the_zoo.py

bench: $(STAMP)
	$(PY) bench/check_speed.py
	$(PY) bench/forward_overhead.py
	$(PY) bench/train_speed.py
	$(PY) bench/codegen_speed.py
	$(PY) bench/render_speed.py

lint: $(STAMP)
	$(PY) -m ruff check netspec tests bench

schema: $(STAMP)
	$(PY) -m netspec schema --write

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
