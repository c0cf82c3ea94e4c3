# Two commands do everything on a fresh machine (see README.md):
#   make main   set up, then run the main job (MLP1024 on real Fashion-MNIST)
#   make test   set up, then run the whole test suite once per backend
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BACKENDS ?= tensorflow jax torch
PYTEST_ARGS ?=
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
# The offline data folder (CIFAR-10, CIFAR-10N, Omniglot) beside the repository.
export KERAS_ROBUST_DATA ?= $(abspath ../shared/data)

.PHONY: setup data test main bench gpu

$(VENV)/.installed: pyproject.toml constraints-cpu.txt
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -c constraints-cpu.txt -e '.[all]'
	touch $@

setup: $(VENV)/.installed

# Fashion-MNIST comes from Debian's package (offline source; TFDS needs the network).
data:
	@[ -f $(FMNIST) ] || ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q dataset-fashion-mnist)

# One process per backend: Keras fixes its backend at import.
# pytest's exit code 5 (nothing collected) is a broken suite, reported as such.
test: setup data
	@for b in $(BACKENDS); do \
	  echo "=== KERAS_BACKEND=$$b ==="; \
	  KERAS_BACKEND=$$b $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc = 5 ]; then echo "pytest collected no tests on $$b: the suite is broken"; exit 1; fi; \
	  [ $$rc = 0 ] || exit $$rc; \
	done

main: setup data
	KERAS_BACKEND=$${KERAS_BACKEND:-jax} $(PY) -m recipes.main

bench: setup
	$(PY) benchmarks/loss_speed.py --backends tensorflow,jax,torch
	$(PY) benchmarks/calibration.py

# The GPU run (benchmarks/README.md, "GPU run"): ResNet-32 on CIFAR-10 on one GPU with JAX or
# torch and no network. Needs no .venv: where keras does not import, the wheels carried in
# GPU_WHEELS (keras, namex, optree) are installed into /tmp/gpu-site first; the project runs
# from this tree. Data: KERAS_ROBUST_DATA (a folder with cifar10-jpeg.tar.gz). GPU_ARGS go to
# the script, e.g. make gpu GPU_ARGS="--budget-s 330 --out /tmp/gpu".
GPU_WHEELS ?= .gpu/wheels
GPU_PY ?= $(if $(wildcard $(PY)),$(PY),python3)
GPU_ARGS ?=
gpu:
	@KERAS_BACKEND=$${KERAS_BACKEND:-jax} $(GPU_PY) -c "import keras" 2>/dev/null || { \
	  $(GPU_PY) -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
	    --target /tmp/gpu-site $(GPU_WHEELS)/*.whl || exit 1; }; \
	PYTHONPATH=/tmp/gpu-site$${PYTHONPATH:+:$$PYTHONPATH} KERAS_BACKEND=$${KERAS_BACKEND:-jax} \
	  PYTHONUNBUFFERED=1 $(GPU_PY) benchmarks/gpu.py $(GPU_ARGS)
