"""The GPU run (issue 13): ResNet-32 on CIFAR-10 with the paper's setup, on one accelerator.

Three phases, in one process on the current ``KERAS_BACKEND`` (jax or torch on
the GPU machine; tensorflow works too where it is installed):

1. ``speed``: Keras training throughput of ResNet-32 (paper setup: SGD lr 0.1,
   momentum 0.9, weight decay 1e-4, batch 128, pad-4 crop + flip) through the
   library's own run path -- `keras_robust.experiments.runs.build` (model, loss,
   optimizer) and a ``fit`` over `keras_robust.experiments.data.EpochBatches`
   (NumPy augmentation, synchronous, as in every recipe). Images/s and seconds
   per epoch are medians over epochs 2..N: the first epoch holds the
   compilation and is reported apart. The augmentation alone (iterating the
   same `EpochBatches`) is timed too: it bounds what any loop fed by it can do.
2. ``reference``: the same ResNet-32 (option-A shortcuts, 464,154 parameters)
   written directly in PyTorch (``torch.nn`` + ``torch.optim.SGD``) and/or in
   plain JAX (``lax.conv`` + a hand-written SGD step under ``jax.jit``), trained
   on the very same `EpochBatches` batches and timed the same way; the ratio
   Keras / reference of images/s (> 1: Keras is faster).
3. ``accuracy``: CE vs MAE* (epsilon 0.5, the paper's ten-class setting) at 40 %
   symmetric noise through `keras_robust.experiments.run` (``paper_config``:
   the 200-epoch schedule, truncated), as many epochs as fit in ``--budget-s``:
   the first loss gets half the budget, the second runs the same number of
   epochs (and stops at its own half of the budget if it is slower).

Writes ``<out>.json`` after every phase (a run killed by a time limit still
leaves what it finished) and ``<out>.md`` (a short table) at the end. A failing
phase is recorded in ``errors`` and the others still run; the exit status is 1
when any phase failed.

    KERAS_BACKEND=jax python benchmarks/gpu.py                  # the full run (~10 min on one H200)
    KERAS_BACKEND=jax python benchmarks/gpu.py --bf16           # mixed_bfloat16 (references under bf16 autocast)
    python benchmarks/gpu.py --limit 256 --test-limit 100 --budget-s 20 --epochs-max 1 --batch-size 32  # smoke

See benchmarks/README.md ("GPU run") for the device command, the wheels and data to carry.
"""

import argparse
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the project need not be installed (the GPU machine runs from the tree)
    sys.path.insert(0, str(ROOT))
# No network there: fail at once on missing data instead of trying a TFDS download.
os.environ.setdefault("KERAS_ROBUST_NO_DOWNLOAD", "1")
# JAX preallocates 75 % of the GPU by default; the other framework's reference needs room too.
os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.45")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

LOSSES = ("ce", "mae*")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None,
                   help="folder holding cifar10-jpeg.tar.gz (default: $KERAS_ROBUST_DATA, else ../shared/data)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpu"),
                   help="output prefix: writes <out>.json and <out>.md (default benchmarks/results/gpu)")
    p.add_argument("--budget-s", type=float, default=480.0,
                   help="seconds for the accuracy phase, all losses together (default 480)")
    p.add_argument("--epochs-max", type=int, default=None, help="at most this many epochs per loss")
    p.add_argument("--speed-epochs", type=int, default=3,
                   help="epochs of the speed and reference phases; the first (compilation) is not counted (default 3)")
    p.add_argument("--speed-steps", type=int, default=None,
                   help="at most this many batches per epoch in the speed and reference phases (default: all)")
    p.add_argument("--limit", type=int, default=None, help="training images (default: all 50,000)")
    p.add_argument("--test-limit", type=int, default=None, help="test images (default: all 10,000)")
    p.add_argument("--batch-size", type=int, default=128, help="global batch size (default 128, the paper's)")
    p.add_argument("--noise-rate", type=float, default=0.4, help="symmetric noise of the accuracy phase (0.4)")
    p.add_argument("--losses", default=",".join(LOSSES), help="losses of the accuracy phase (default ce,mae*)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bf16", action="store_true", help='keras.mixed_precision.set_global_policy("mixed_bfloat16")')
    p.add_argument("--reference", default="auto",
                   help="plain loops to compare with: torch, jax, both as 'torch,jax', none; "
                        "auto: every one of torch and jax that imports (default)")
    p.add_argument("--phases", default="speed,reference,accuracy",
                   help="which phases to run (default speed,reference,accuracy)")
    args = p.parse_args(argv)
    if args.speed_epochs < 2:
        p.error("--speed-epochs must be >= 2 (the first epoch is compilation and is not counted)")
    if args.speed_steps is not None and args.speed_steps < 1:
        p.error("--speed-steps must be >= 1")
    if args.budget_s <= 0:
        p.error("--budget-s must be positive")
    if args.epochs_max is not None and args.epochs_max < 1:
        p.error("--epochs-max must be >= 1")
    args.phases = [s.strip() for s in args.phases.split(",") if s.strip()]
    bad = sorted(set(args.phases) - {"speed", "reference", "accuracy"})
    if bad:
        p.error(f"unknown phases {bad}")
    args.losses = [s.strip() for s in args.losses.split(",") if s.strip()]
    return args


# --------------------------------------------------------------------------- helpers

def _median(values):
    v = sorted(values)
    if not v:
        return None
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else 0.5 * (v[mid - 1] + v[mid])


def _epoch_summary(times, n_images):
    """Images/s and s/epoch from per-epoch wall times; epoch 1 (compilation) apart."""
    timed = times[1:]
    med = _median(timed)
    return {"epoch_seconds": [round(t, 4) for t in times], "first_epoch_seconds": round(times[0], 4),
            "seconds_per_epoch": None if med is None else round(med, 4),
            "images_per_second": None if not med else round(n_images / med, 1),
            "images_per_epoch": int(n_images), "timed_epochs": len(timed)}


def _steps(args, batches):
    """Batches per timed epoch: all of them, or --speed-steps."""
    return min(batches.per_epoch, args.speed_steps or batches.per_epoch)


def _images(args, batches, n):
    """Images in one timed epoch (the last batch of a full epoch may be short)."""
    steps = _steps(args, batches)
    return n if steps == batches.per_epoch else steps * args.batch_size


def _versions():
    out = {"python": platform.python_version()}
    for name in ("keras", "numpy", "jax", "jaxlib", "torch", "tensorflow"):
        mod = sys.modules.get(name)
        if mod is None and name in ("keras", "numpy"):
            mod = __import__(name)
        if mod is not None:
            out[name] = getattr(mod, "__version__", "?")
    try:
        from importlib.metadata import version
        out["keras_robust"] = version("keras-robust")
    except Exception:  # noqa: BLE001 - run from the tree, not installed
        out["keras_robust"] = "source tree"
    try:
        import subprocess
        out["git"] = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                    capture_output=True, text=True, timeout=10).stdout.strip() or None
    except Exception:  # noqa: BLE001
        out["git"] = None
    return out


def _device_name(backend):
    """What the Keras backend computes on, in words."""
    try:
        if backend == "jax":
            import jax
            d = jax.devices()[0]
            return f"{d.platform}:{getattr(d, 'device_kind', d)}"
        if backend == "torch":
            import torch
            if torch.cuda.is_available():
                return f"cuda:{torch.cuda.get_device_name(0)}"
            return f"cpu:{platform.processor() or platform.machine()}"
        if backend == "tensorflow":
            import tensorflow as tf
            gpus = tf.config.list_physical_devices("GPU")
            return f"gpu:{gpus[0].name}" if gpus else f"cpu:{platform.processor() or platform.machine()}"
    except Exception as e:  # noqa: BLE001
        return f"unknown ({e})"
    return "unknown"


class _Writer:
    def __init__(self, out):
        self.json_path, self.md_path = Path(out + ".json"), Path(out + ".md")
        self.json_path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, result):
        tmp = self.json_path.with_name(self.json_path.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=2, default=str) + "\n")
        os.replace(tmp, self.json_path)


# --------------------------------------------------------------------------- phase 1: Keras speed

def keras_speed(args, raw, y, result):
    import keras
    import numpy as np

    from keras_robust import datasets
    from keras_robust.experiments import data as run_data
    from keras_robust.experiments import paper_config, runs

    config = paper_config("cifar10", "resnet32", "ce", noise="none", noise_rate=0.0, seed=args.seed,
                          epochs=args.speed_epochs, batch_size=args.batch_size, limit=args.limit,
                          test_limit=args.test_limit, backend=keras.backend.backend())
    kind = datasets.info("cifar10").augment
    batches = run_data.EpochBatches(raw, y, config, augment_kind=kind)
    # The augmentation alone, one epoch: the ceiling of any loop fed by EpochBatches.
    t0 = time.perf_counter()
    for j in range(batches.per_epoch):
        batches[j]
    aug_s = time.perf_counter() - t0
    result["speed"]["augment_only"] = {"seconds_per_epoch": round(aug_s, 4),
                                       "images_per_second": round(len(y) / aug_s, 1)}

    steps = _steps(args, batches)
    model, _ = runs.build(config, 10, raw.shape[1:])
    probe = model.trainable_variables[-1]
    times = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            keras.ops.convert_to_numpy(probe.value)  # wait for the device (JAX dispatch, CUDA streams)
            times.append(time.perf_counter() - self.t0)

    hist = model.fit(batches, epochs=config.epochs, steps_per_epoch=steps, shuffle=False,
                     verbose=0, callbacks=[Timer()])
    out = _epoch_summary(times, _images(args, batches, len(y)))
    out.update(path="keras_robust.experiments.runs.build + Model.fit(EpochBatches)",
               parameters=int(sum(np.prod(v.shape) for v in model.trainable_variables)),
               final_loss=float(hist.history["loss"][-1]), batches_per_epoch=steps,
               dtype_policy=keras.config.dtype_policy().name)
    result["speed"]["keras"] = out
    return batches


# --------------------------------------------------------------------------- phase 2: references

def _torch_resnet32(num_classes=10):
    import torch
    from torch import nn
    from torch.nn import functional as F

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.stride, self.pad = stride, (cout - cin) // 2

        def forward(self, x):
            out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
            short = x
            if self.stride != 1 or self.pad:  # option A: subsample, zero-pad the channels
                short = F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, self.pad, self.pad))
            return F.relu(out + short)

    class ResNet32(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn = nn.BatchNorm2d(16)
            blocks, cin = [], 16
            for stage, cout in enumerate((16, 32, 64)):
                for b in range(5):
                    blocks.append(Block(cin, cout, 2 if stage and b == 0 else 1))
                    cin = cout
            self.blocks = nn.Sequential(*blocks)
            self.fc = nn.Linear(64, num_classes)
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.init.kaiming_normal_(m.weight)

        def forward(self, x):
            x = self.blocks(F.relu(self.bn(self.conv(x))))
            return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    return ResNet32()


def torch_reference(args, batches, n_images):
    import torch
    from torch.nn import functional as F

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(args.seed)
    net = _torch_resnet32().to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    net.train()
    times, loss = [], None
    for epoch in range(args.speed_epochs):
        t0 = time.perf_counter()
        for i in range(_steps(args, batches)):
            x, y = batches[epoch * batches.per_epoch + i]
            xb = torch.from_numpy(x).to(dev, non_blocking=True).permute(0, 3, 1, 2).contiguous()
            yb = torch.from_numpy(y.astype("int64")).to(dev, non_blocking=True)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=args.bf16):
                loss = F.cross_entropy(net(xb).float(), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        loss_value = float(loss.detach())  # waits for the device
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    out = _epoch_summary(times, _images(args, batches, n_images))
    out.update(framework=f"torch {torch.__version__}", device=str(dev) if dev.type == "cpu" else
               f"cuda:{torch.cuda.get_device_name(0)}",
               parameters=int(sum(p.numel() for p in net.parameters() if p.requires_grad)),
               final_loss=loss_value, what="torch.nn ResNet-32 + torch.optim.SGD(0.1, momentum 0.9, "
               "weight_decay 1e-4), F.cross_entropy, cudnn.benchmark"
               + (", bf16 autocast" if args.bf16 else ""))
    return out


def _jax_resnet32(key, num_classes=10):
    """Parameters, BatchNorm statistics and the forward function of a plain-JAX ResNet-32."""
    import jax
    import jax.numpy as jnp

    spec, cin = [], 16
    for stage, cout in enumerate((16, 32, 64)):
        for b in range(5):
            spec.append((cin, cout, 2 if stage and b == 0 else 1))
            cin = cout
    keys = iter(jax.random.split(key, 2 * len(spec) + 2))

    def he(shape):
        fan_in = 1
        for d in shape[:-1]:
            fan_in *= d
        return jax.random.normal(next(keys), shape, jnp.float32) * (2.0 / fan_in) ** 0.5

    def bn_params(c):
        return {"gamma": jnp.ones(c), "beta": jnp.zeros(c)}

    def bn_stats(c):
        return {"mean": jnp.zeros(c), "var": jnp.ones(c)}

    params = {"stem": he((3, 3, 3, 16)), "stem_bn": bn_params(16), "blocks": [],
              "fc_w": he((64, num_classes)), "fc_b": jnp.zeros(num_classes)}
    stats = {"stem_bn": bn_stats(16), "blocks": []}
    for ci, co, _ in spec:
        params["blocks"].append({"w1": he((3, 3, ci, co)), "bn1": bn_params(co),
                                 "w2": he((3, 3, co, co)), "bn2": bn_params(co)})
        stats["blocks"].append({"bn1": bn_stats(co), "bn2": bn_stats(co)})

    def conv(x, w, stride, dtype):
        return jax.lax.conv_general_dilated(x, w.astype(dtype), (stride, stride), ((1, 1), (1, 1)),
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))

    def bn(x, p, s):
        x32 = x.astype(jnp.float32)
        mean, var = x32.mean((0, 1, 2)), x32.var((0, 1, 2))
        y = (x32 - mean) * jax.lax.rsqrt(var + 1e-5) * p["gamma"] + p["beta"]
        new = {"mean": 0.9 * s["mean"] + 0.1 * mean, "var": 0.9 * s["var"] + 0.1 * var}
        return y.astype(x.dtype), new

    def forward(params, stats, x, dtype):
        x = x.astype(dtype)
        h, st = bn(conv(x, params["stem"], 1, dtype), params["stem_bn"], stats["stem_bn"])
        h = jax.nn.relu(h)
        new = {"stem_bn": st, "blocks": []}
        for (ci, co, stride), p, s in zip(spec, params["blocks"], stats["blocks"]):
            o, s1 = bn(conv(h, p["w1"], stride, dtype), p["bn1"], s["bn1"])
            o, s2 = bn(conv(jax.nn.relu(o), p["w2"], 1, dtype), p["bn2"], s["bn2"])
            short = h
            if stride != 1 or ci != co:
                pad = (co - ci) // 2
                short = jnp.pad(h[:, ::stride, ::stride, :], ((0, 0), (0, 0), (0, 0), (pad, pad)))
            h = jax.nn.relu(o + short)
            new["blocks"].append({"bn1": s1, "bn2": s2})
        pooled = h.astype(jnp.float32).mean((1, 2))
        return pooled @ params["fc_w"] + params["fc_b"], new

    return params, stats, forward


def jax_reference(args, batches, n_images):
    import functools

    import jax
    import jax.numpy as jnp

    params, stats, forward = _jax_resnet32(jax.random.PRNGKey(args.seed))
    dtype = jnp.bfloat16 if args.bf16 else jnp.float32
    lr, momentum, wd = 0.1, 0.9, 1e-4

    def loss_fn(params, stats, x, y):
        logits, new = forward(params, stats, x, dtype)
        logp = jax.nn.log_softmax(logits.astype(jnp.float32))
        return -jnp.take_along_axis(logp, y[:, None], 1).mean(), new

    @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
    def step(params, stats, mom, x, y):
        (loss, new), g = jax.value_and_grad(loss_fn, has_aux=True)(params, stats, x, y)
        g = jax.tree_util.tree_map(lambda g, p: g + wd * p, g, params)
        mom = jax.tree_util.tree_map(lambda m, g: momentum * m + g, mom, g)
        params = jax.tree_util.tree_map(lambda p, m: p - lr * m, params, mom)
        return params, new, mom, loss

    mom = jax.tree_util.tree_map(jnp.zeros_like, params)
    times, loss = [], None
    for epoch in range(args.speed_epochs):
        t0 = time.perf_counter()
        for i in range(_steps(args, batches)):
            x, y = batches[epoch * batches.per_epoch + i]
            params, stats, mom, loss = step(params, stats, mom, jnp.asarray(x), jnp.asarray(y.astype("int32")))
        jax.block_until_ready((params, loss))
        times.append(time.perf_counter() - t0)
    out = _epoch_summary(times, _images(args, batches, n_images))
    d = jax.devices()[0]
    out.update(framework=f"jax {jax.__version__}", device=f"{d.platform}:{getattr(d, 'device_kind', d)}",
               parameters=int(sum(p.size for p in jax.tree_util.tree_leaves(params))),
               final_loss=float(loss), what="plain JAX ResNet-32 (lax.conv, hand-written BN and "
               "SGD momentum 0.9 + weight decay 1e-4), one jax.jit step with donated buffers"
               + (", bf16 convolutions" if args.bf16 else ""))
    return out


def _reference_names(spec):
    import importlib.util

    if spec == "none":
        return []
    if spec == "auto":
        return [n for n in ("torch", "jax") if importlib.util.find_spec(n) is not None]
    names = [s.strip() for s in spec.split(",") if s.strip()]
    bad = sorted(set(names) - {"torch", "jax"})
    if bad:
        raise ValueError(f"--reference: unknown {bad} (torch, jax, auto, none)")
    return names


# --------------------------------------------------------------------------- phase 3: accuracy

def _float32_predictions():
    """Library gap, worked around here: under ``mixed_bfloat16`` the model's logits are
    bfloat16 and `keras_robust.metrics.false_label_accuracy` refuses them (not a numeric
    NumPy dtype), so `run`'s held-out evaluation fails. Cast the predictions that
    `keras_robust.experiments.data.predict` returns to float32 (the values are unchanged)."""
    import numpy as np

    from keras_robust.experiments import data as run_data

    if getattr(run_data.predict, "_float32", False):
        return
    original = run_data.predict

    def predict(*args, **kwargs):
        return np.asarray(original(*args, **kwargs), dtype="float32")

    predict._float32 = True
    run_data.predict = predict


def accuracy(args, result, writer, t_start):
    import tempfile

    import keras

    from keras_robust.experiments import paper_config, run

    class Budget(keras.callbacks.Callback):
        """Stops ``fit`` when the next epoch (training + the held-out evaluation) would end past the deadline."""

        def __init__(self, deadline):
            super().__init__()
            self.deadline, self.last_end, self.eval_s = deadline, None, None

        def on_epoch_begin(self, epoch, logs=None):
            now = time.perf_counter()
            if self.last_end is not None:  # the previous epoch's evaluation and checkpoint
                self.eval_s = now - self.last_end
            self.t0 = now

        def on_epoch_end(self, epoch, logs=None):
            now = time.perf_counter()
            train_s = now - self.t0
            eval_s = self.eval_s if self.eval_s is not None else 0.25 * train_s
            if now + 2 * eval_s + train_s > self.deadline:
                self.model.stop_training = True
            self.last_end = now

    if args.bf16:
        _float32_predictions()
    per_loss = args.budget_s / max(1, len(args.losses))
    epochs_cap = args.epochs_max or 200
    acc = result["accuracy"]
    acc.update(budget_s=args.budget_s, budget_per_loss_s=round(per_loss, 1), noise="symmetric (other classes)",
               noise_rate=args.noise_rate, runs={})
    results_dir = tempfile.mkdtemp(prefix="kr-gpu-runs-")
    for i, loss in enumerate(args.losses):
        t0 = time.perf_counter()
        config = paper_config("cifar10", "resnet32", loss, noise="symmetric", noise_rate=args.noise_rate,
                              seed=args.seed, epochs=200, batch_size=args.batch_size, limit=args.limit,
                              test_limit=args.test_limit)
        # The 200-epoch schedule is kept (lr 0.1 until epoch 100): `epochs` stays 200 and the
        # budget stops fit; only --epochs-max / the first loss's count shorten the config.
        if epochs_cap < 200:
            config = config.replace(epochs=epochs_cap)
        history = run(config, results_dir=results_dir, callbacks=[Budget(t0 + per_loss)], verbose=1,
                      distribute=False, force=True)
        rows = history["epochs"]
        seconds = [r["seconds"] for r in rows]
        test = [r["test_accuracy"] for r in rows]
        acc["runs"][loss] = {
            "label": config.label, "run_id": history["run_id"], "epochs": len(rows),
            "final_test_accuracy": test[-1] if test else None,
            "best_test_accuracy": max((t for t in test if t is not None), default=None),
            "final_train_accuracy_noisy": rows[-1]["accuracy"] if rows else None,
            "final_false_label_accuracy": rows[-1]["false_label_accuracy"] if rows else None,
            "test_accuracy_per_epoch": test, "epoch_seconds": seconds,
            "seconds_per_epoch": _median(seconds[1:]) if len(seconds) > 1 else None,
            "wall_seconds": round(time.perf_counter() - t0, 2),
            "num_train": history.get("num_train"), "num_noisy": history.get("num_noisy"),
            "num_test": history.get("num_test"), "warnings": history.get("warnings", []),
        }
        if i == 0 and len(rows) < epochs_cap:
            epochs_cap = len(rows)  # the other losses run as many epochs as the first
        acc["epochs_per_loss"] = epochs_cap
        result["total_seconds"] = round(time.perf_counter() - t_start, 2)
        writer.write(result)


# --------------------------------------------------------------------------- report

def markdown(result):
    fmt = lambda v, spec: "–" if v is None else format(v, spec)  # noqa: E731
    lines = [f"# GPU run: ResNet-32 on CIFAR-10 ({result['backend']}, {result['device']}, "
             f"bf16 {'on' if result['bf16'] else 'off'})", "",
             f"Keras {result['versions'].get('keras')}, " + ", ".join(
                 f"{k} {result['versions'][k]}" for k in ("jax", "torch", "tensorflow") if k in result["versions"])
             + f"; batch {result['args']['batch_size']}, {result['data'].get('num_train', '?')} train / "
             f"{result['data'].get('num_test', '?')} test images; {result.get('total_seconds', '?')} s in all.", ""]
    speed = result.get("speed", {})
    if speed.get("keras") or speed.get("references"):
        lines += ["Training throughput, epochs 2.. (epoch 1 holds the compilation and is shown apart); "
                  "ratio = Keras images/s / reference images/s.", "",
                  "| loop | images/s | s/epoch | epoch 1 (s) | ratio Keras/this |", "|---|---|---|---|---|"]
        k = speed.get("keras")
        if k:
            lines.append(f"| Keras {result['backend']} (library run path) | {fmt(k['images_per_second'], '.0f')} | "
                         f"{fmt(k['seconds_per_epoch'], '.2f')} | {fmt(k['first_epoch_seconds'], '.1f')} | 1.00 |")
        for name, r in speed.get("references", {}).items():
            lines.append(f"| plain {name} | {fmt(r.get('images_per_second'), '.0f')} | "
                         f"{fmt(r.get('seconds_per_epoch'), '.2f')} | {fmt(r.get('first_epoch_seconds'), '.1f')} | "
                         f"{fmt(r.get('ratio_keras_over_reference'), '.2f')} |")
        aug = speed.get("augment_only")
        if aug:
            lines.append(f"| NumPy augmentation alone | {fmt(aug['images_per_second'], '.0f')} | "
                         f"{fmt(aug['seconds_per_epoch'], '.2f')} | | |")
        lines.append("")
    acc = result.get("accuracy", {})
    if acc.get("runs"):
        lines += [f"{acc['noise_rate']:.0%} symmetric noise, paper schedule truncated to the epochs that fit "
                  f"in {acc['budget_s']:g} s.", "",
                  "| loss | epochs | final test acc. | best test acc. | s/epoch |", "|---|---|---|---|---|"]
        for r in acc["runs"].values():
            pct = lambda v: "–" if v is None else f"{100 * v:.2f} %"  # noqa: E731
            lines.append(f"| {r['label']} | {r['epochs']} | {pct(r['final_test_accuracy'])} | "
                         f"{pct(r['best_test_accuracy'])} | {fmt(r['seconds_per_epoch'], '.2f')} |")
        lines.append("")
    if result["errors"]:
        lines += ["Errors: " + "; ".join(f"{e['phase']}: {e['error']}" for e in result["errors"]), ""]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    t_start = time.perf_counter()
    if args.data:
        os.environ["KERAS_ROBUST_DATA"] = str(Path(args.data).resolve())
    elif not os.environ.get("KERAS_ROBUST_DATA") and (ROOT.parent / "shared" / "data").is_dir():
        os.environ["KERAS_ROBUST_DATA"] = str(ROOT.parent / "shared" / "data")

    import keras

    if args.bf16:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    from keras_robust import datasets

    backend = keras.backend.backend()
    writer = _Writer(args.out)
    result = {"benchmark": "gpu", "backend": backend, "device": _device_name(backend), "bf16": args.bf16,
              "dtype_policy": keras.config.dtype_policy().name, "versions": _versions(),
              "args": {k: v for k, v in vars(args).items()}, "data": {},
              "speed": {"references": {}}, "accuracy": {}, "errors": [], "complete": False,
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    print(f"[gpu] backend {backend}, device {result['device']}, bf16 {args.bf16}, "
          f"data {os.environ.get('KERAS_ROBUST_DATA')}", flush=True)

    def phase(name, fn):
        t0 = time.perf_counter()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - record, go on with the other phases
            traceback.print_exc()
            result["errors"].append({"phase": name, "error": f"{type(e).__name__}: {e}",
                                     "traceback": traceback.format_exc()[-4000:]})
        result.setdefault("phase_seconds", {})[name] = round(time.perf_counter() - t0, 2)
        result["total_seconds"] = round(time.perf_counter() - t_start, 2)
        writer.write(result)
        print(f"[gpu] {name}: {result['phase_seconds'][name]:.1f} s", flush=True)

    state = {}

    def load():
        t0 = time.perf_counter()
        x, y = datasets.load("cifar10", "train", limit=args.limit, verbose=1)
        t1 = time.perf_counter()
        xt, _ = datasets.load("cifar10", "test", limit=args.test_limit, verbose=1)
        state.update(raw=x, y=y)
        result["data"] = {"num_train": int(len(y)), "num_test": int(len(xt)),
                          "train_load_seconds": round(t1 - t0, 2), "test_load_seconds": round(time.perf_counter() - t1, 2),
                          "source": os.environ.get("KERAS_ROBUST_DATA"),
                          "cache": str(datasets.default_cache_dir()) if hasattr(datasets, "default_cache_dir")
                          else os.environ.get("KERAS_ROBUST_CACHE")}

    phase("data", load)
    if "raw" not in state:
        writer.write(result)
        sys.exit(1)

    if "speed" in args.phases or "reference" in args.phases:
        def speed():
            state["batches"] = keras_speed(args, state["raw"], state["y"], result)
            k = result["speed"]["keras"]
            print(f"[gpu] keras: {k['images_per_second']} images/s, {k['seconds_per_epoch']} s/epoch "
                  f"(epoch 1: {k['first_epoch_seconds']} s)", flush=True)
        phase("speed", speed)

    if "reference" in args.phases and "batches" in state:
        for name in _reference_names(args.reference):
            def ref(name=name):
                fn = torch_reference if name == "torch" else jax_reference
                r = fn(args, state["batches"], len(state["y"]))
                k = result["speed"].get("keras") or {}
                if k.get("images_per_second") and r.get("images_per_second"):
                    r["ratio_keras_over_reference"] = round(k["images_per_second"] / r["images_per_second"], 3)
                result["speed"]["references"][name] = r
                print(f"[gpu] {name} reference: {r['images_per_second']} images/s, ratio Keras/{name} "
                      f"{r.get('ratio_keras_over_reference')}", flush=True)
            phase(f"reference_{name}", ref)

    if "accuracy" in args.phases:
        phase("accuracy", lambda: accuracy(args, result, writer, t_start))

    result["complete"] = not result["errors"]
    result["total_seconds"] = round(time.perf_counter() - t_start, 2)
    writer.write(result)
    writer.md_path.write_text(markdown(result))
    print(markdown(result), flush=True)
    return 0 if result["complete"] else 1


if __name__ == "__main__":
    sys.exit(main())
