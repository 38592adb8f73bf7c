# Two entry points, each creating .venv if it is missing:
#   make demo   install nnflow and train the bundled iris example (runs/iris-mlp/...)
#   make test   install nnflow with its test and onnx extras and run the test suite
#   (make test-fast skips the tests marked slow)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-fast install install-test bench fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,onnx]"

demo: install
	$(BIN)/nnflow check configs/iris.yaml
	$(BIN)/nnflow train configs/iris.yaml

test: install-test
	$(BIN)/python -m pytest

test-fast: install-test
	$(BIN)/python -m pytest -m "not slow"

fuzz: install-test
	$(BIN)/python benchmarks/fuzz_spec.py

bench: install
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/train_tutorial.py
	$(BIN)/python benchmarks/train_large.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
