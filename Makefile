# make demo: set up .venv, check + build the example specs, train LeNet-5 on digits
# make test: set up .venv and run the test suite (what CI runs)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup demo test fuzz bench lint schema clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	@echo "== netspec check: every example spec, no torch import =="
	$(PY) -m netspec check specs/*.yaml
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

bench: $(STAMP)
	$(PY) bench/check_speed.py
	$(PY) bench/forward_overhead.py
	$(PY) bench/train_speed.py

lint: $(STAMP)
	$(PY) -m ruff check netspec tests bench

schema: $(STAMP)
	$(PY) -m netspec schema --write

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
