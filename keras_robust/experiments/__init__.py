"""Experiments: one run, a sharded grid of runs, and the report that aggregates them.

* `config`: `RunConfig` (everything that determines a run, and its id) and
  `paper_config` (the paper's appendix-1 setups);
* `runs`: `run`, one Keras ``fit`` with callbacks, resumable in
  ``results_dir/<run id>/`` (history, atomic per-epoch checkpoint, lock);
* `grid`: deterministic shards of a list of runs (several machines or
  processes share one results directory), optionally starting none that
  would end after a deadline, and `status`, their progress;
* `report`: mean ± standard error over seeds in the paper's table format,
  markdown, CSV and learning-curve plots (`keras_robust.plots`);
* `provenance`: the code commit and package versions of each process that
  trained a run, recorded in its history.

Resuming reproduces an uninterrupted run: the model is initialised from the
seed, the noisy labels from the seed, each epoch's example order (and
augmentation) from ``(seed, epoch)`` only, and the learning rate is a function
of the epoch. Data parallelism: with more than one local accelerator (or
forced host devices, e.g. ``XLA_FLAGS=--xla_force_host_platform_device_count=2``),
JAX runs use ``keras.distribution.DataParallel`` and TensorFlow runs a
``tf.distribute.MirroredStrategy``; the batch size stays the paper's global
one; torch runs use one device.
"""

from keras_robust.experiments.checkpoint import RunError
from keras_robust.experiments.config import (
    CIFAR_N_CE_REFERENCE,
    MLP_LEARNING_RATES,
    MLP_LR_GRID,
    SETUPS,
    TEN_CLASS_MAE_STAR_EPSILON,
    RunConfig,
    cifar_n_config,
    paper_config,
    run_dir,
)
from keras_robust.experiments.grid import format_status, grid, parse_deadline, parse_shard, shard, status
from keras_robust.experiments.report import aggregate, embed_markdown, load_histories, plot_curves, report, tables
from keras_robust.experiments.runs import run

__all__ = [
    "CIFAR_N_CE_REFERENCE",
    "MLP_LEARNING_RATES",
    "MLP_LR_GRID",
    "SETUPS",
    "TEN_CLASS_MAE_STAR_EPSILON",
    "RunConfig",
    "RunError",
    "aggregate",
    "cifar_n_config",
    "embed_markdown",
    "format_status",
    "grid",
    "load_histories",
    "paper_config",
    "parse_deadline",
    "parse_shard",
    "plot_curves",
    "report",
    "run",
    "run_dir",
    "shard",
    "status",
    "tables",
]
