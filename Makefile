# Two entry points, each creating .venv if it is missing:
#   make demo   install nnflow and train the bundled iris example (runs/iris-mlp/...)
#   make test   install nnflow with its test, onnx, postgres, mysql, mlflow and serve extras, run ruff and mypy (make lint), then the test suite
#   (make test-fast skips the tests marked slow; make test-no-tf runs only those that need no TensorFlow, in seconds)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast test-no-tf lint install install-test bench fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,onnx,postgres,mysql,mlflow,serve]"

demo: install
	$(BIN)/nnflow check configs/iris.yaml
	$(BIN)/nnflow train configs/iris.yaml

# ruff (lint, format) and mypy, configured in pyproject.toml; all three run, and any finding fails.
LINT = status=0; \
	$(BIN)/ruff check nnflow tests benchmarks conftest.py || status=1; \
	$(BIN)/ruff format --check nnflow tests benchmarks conftest.py || status=1; \
	$(BIN)/mypy || status=1; \
	exit $$status

lint: install-test
	@$(LINT)

# `make test` (and so CI) fails on any lint, format or type finding, before the tests run.
test: install-test
	@$(LINT)
	$(BIN)/python -m pytest

test-fast: install-test
	$(BIN)/python -m pytest -m "not slow"

test-no-tf: install-test
	$(BIN)/python -m pytest -m no_tf

fuzz: install-test
	$(BIN)/python benchmarks/fuzz_spec.py

bench: install
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/train_tutorial.py
	$(BIN)/python benchmarks/train_large.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
