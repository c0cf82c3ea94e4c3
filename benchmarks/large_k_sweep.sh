#!/bin/bash
# The large-K sweep of docs/results/large_k.md in phases, most important first, one process at a
# time, pinned to CPU core 0 (CORE=...; this machine's other core runs another job).
# Resumable: rerun it; finished cells are skipped.
#   setsid nohup benchmarks/large_k_sweep.sh > large_k.log 2>&1 &
cd "$(dirname "$0")/.." || exit 1
export KERAS_BACKEND=${KERAS_BACKEND:-jax} PYTHONUNBUFFERED=1
run() { taskset -c ${CORE:-0} ${PYTHON:-.venv/bin/python} benchmarks/large_k.py "$@" || exit $?; }
run --tasks teacher1000 --optimizers sgd                              # the paper's Table 3 (SGD) at K = 1000
run --tasks teacher1000 --optimizers sgd --losses 'gce*,nce+mae*'     # its lower row's logit-bias variants
run --tasks fmnist,teacher100,omniglot --optimizers sgd --noise 0     # the K sweep, SGD, clean labels
run --learnability 100:200000:10                                      # how learnable the teacher tasks are
# The transferred parameters at 40 % noise, K = 1000, with a longer budget (40 epochs instead of 15):
run --tasks teacher1000 --optimizers sgd --noise 0.4 --losses 'gce+,nce+agce+' --epochs 40 \
    --out benchmarks/results/large_k/long-40ep
run --tasks teacher10000 --optimizers sgd --noise 0
run --learnability 1000:200000:10
run --tasks teacher1000 --optimizers adam
run --tasks teacher1000 --optimizers adam --losses 'gce*,nce+mae*'
run --tasks fmnist,teacher100,omniglot,teacher10000 --optimizers adam --noise 0
run --tasks fmnist,teacher100,omniglot,teacher10000                   # 40 % noise at the other K
