#!/bin/bash
# The large-K sweep of docs/results/large_k.md in phases, one process at a time, pinned to CPU core 0
# (this machine's other core runs another job). Resumable: rerun it; finished cells are skipped.
#   setsid nohup benchmarks/large_k_sweep.sh > large_k.log 2>&1 &
cd "$(dirname "$0")/.." || exit 1
export KERAS_BACKEND=${KERAS_BACKEND:-jax} PYTHONUNBUFFERED=1
run() { taskset -c ${CORE:-0} ${PYTHON:-.venv/bin/python} benchmarks/large_k.py "$@" || exit $?; }
run --tasks teacher1000                                   # the paper's Table 3 at K = 1000
run --tasks teacher1000 --losses 'gce*,nce+mae*'          # its lower row's logit-bias variants
run --tasks teacher10000 --optimizers sgd --noise 0       # K = 10,000, SGD, clean labels
run --tasks fmnist
run --tasks teacher100
run --tasks omniglot
run --tasks teacher10000                                  # the rest of K = 10,000
