# make demo: set up .venv and check + build the example specs
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

test: $(STAMP)
	$(PY) -m pytest -q -n 2 -p no:cacheprovider

fuzz: $(STAMP)
	NETSPEC_FUZZ_EXAMPLES=100000 $(PY) -m pytest -q -n 2 -p no:cacheprovider tests/test_differential_spatial.py tests/test_differential_layers.py

bench: $(STAMP)
	$(PY) bench/check_speed.py

lint: $(STAMP)
	$(PY) -m ruff check netspec tests bench

schema: $(STAMP)
	$(PY) -m netspec schema --write

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
