#!/usr/bin/env bash
# The CIFAR-10N loss comparison of issue 14 (MLP1024, the appendix's MLP setup), in priority
# order, as one shard of N:
#   SHARD=1/2 nohup recipes/cifar10n_grid.sh > results/cifar10n-1.log 2>&1 &
# Processes sharing one results directory (one per core) can instead all run SHARD=1/1: each
# run's lock makes a copy skip the run another copy is training, so together they follow the
# priority order run by run, where fixed shards can leave one shard's part of a line behind.
# Real human labels (aggre 9.0 %, random1 17.2 %, worse 40.2 % wrong), symmetric noise at the
# same rates, and worse's transition matrix applied synthetically. Resumable and shard-safe.
# Symmetric runs share results/mlp1024 with the fidelity grid (same configuration, same run id).
# afterwards: python -m recipes.cifar10n_table --out docs/results/cifar10n-losses.md --into docs/results/cifar10n.md
# STATUS=1 recipes/cifar10n_grid.sh trains nothing: it prints where every line's runs stand.
# DEADLINE=08:10 (or +2h) starts no run that would end after it (recipes.grid --deadline): a session
# with a time limit then ends between runs instead of leaving one half-trained.
set -u
cd "$(dirname "$0")/.."
SHARD="${SHARD:-1/1}"
PY="${PY:-.venv/bin/python}"
export KERAS_ROBUST_DATA="${KERAS_ROBUST_DATA:-$(cd .. && pwd)/shared/data}"
source recipes/deadline.sh
# Priority: the seven losses issue 14 requires, with two seeds, before the other two losses
# of the comparison and before a third seed. LOSSES=... runs one list through every line instead.
CORE=ce,mae,mae*,gce,nce+mae,bitempered,sce
EXTRA=nfl+mae,nce+agce
run() {  # results-dir seeds extra-arguments...
  local results="$1" seeds="$2"; shift 2
  KERAS_BACKEND=jax "$PY" -m recipes.grid --dataset cifar10 --arch mlp1024 --losses "$losses" \
    --seeds "$seeds" --shard "$SHARD" --results "$results" --no-distribute ${STATUS:+--status} \
    ${DEADLINE:+--deadline "$DEADLINE"} "$@"
}
# Per seed: `worse` (40 % wrong) before the others (its
# symmetric twin, 40 %, is also a cell of the fidelity grid's CIFAR-10 table, and its matrix twin
# is the sharpest test of whether real noise differs from synthetic noise), then aggre and random1
# with their symmetric twins (9 %, 17 %). Within a line, runs go in run-id order.
seed_lines() {  # losses seeds: every line of the comparison, for those losses and seeds
  local seeds
  for seeds in ${2//,/ }; do
    losses="$1" run results/mlp1024 "$seeds" --noise symmetric --rates 0.4
    losses="$1" run results/cifar10n "$seeds" --noise human_matrix --labels worse
    losses="$1" run results/cifar10n "$seeds" --noise human --labels aggre,random1,worse
    losses="$1" run results/mlp1024 "$seeds" --noise symmetric --rates 0.09,0.17
  done
}
if [ -n "${LOSSES:-}" ]; then
  seed_lines "$LOSSES" 0,1,2
else
  seed_lines "$CORE" 0,1
  seed_lines "$EXTRA" 0,1
  seed_lines "$CORE,$EXTRA" 2
fi
