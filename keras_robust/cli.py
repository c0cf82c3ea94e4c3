"""``keras-robust``: calibrate a loss for K classes, draw the paper's figures, train, report.

    keras-robust calibrate --classes 1000 [--target 0.15] [--logit-std 1] [--logit-mean 0] [--json]
    keras-robust curves --classes 1000 --losses ce,mae,gce --out curves.png
    keras-robust figures --out docs/figures
    keras-robust preflight --model m.keras --loss mae --classes 1000 [--data random|fashion_mnist] [--json]
    keras-robust train --dataset fashion_mnist --loss mae* [--noise-rate 0.2] [--results results]
    keras-robust report [--results results]
    keras-robust --version

``calibrate`` prints eps(K) of the paper's Eq. 4 (MAE*) and the
hyperparameters transferred to K by keeping ``<delta_k>(0)`` of Eq. 3
(Sec. 3.3, appendix 4). Bad input, a missing optional package (matplotlib,
keras-tuner, TensorFlow Datasets, pillow, a backend) and a request too large
exit with status 2 and a one-line message.
"""

import argparse
import json
import os
import sys

# genCE: the paper's Sec. 3.3 reference (K = 100, q = 0.7 -> q = 0.48 at K = 1000).
GCE_REFERENCE = (100, 0.7)
# NCE-AGCE: one rule, shared with the tuner: keras_robust.calibration.transfer_nce_agce.
# The transfers hold samples * K draws of the other logits: 2**27 (about 1 GiB
# as float64) allows K ~ 1e6 at the default 128 samples. eps(K) has no limit.
MAX_TRANSFER_DRAWS = 2**27

# Optional packages: the import name, what to install (the project's extra that brings it).
OPTIONAL_PACKAGES = {
    "matplotlib": "pip install 'keras-robust[plots]'",
    "keras_tuner": "pip install 'keras-robust[tuner]'",
    "tensorflow_datasets": "pip install 'keras-robust[datasets]'",
    "PIL": "pip install pillow (in every backend extra, e.g. 'keras-robust[jax]')",
    "tensorflow": "pip install 'keras-robust[tensorflow]'",
    "jax": "pip install 'keras-robust[jax]'",
    "jaxlib": "pip install 'keras-robust[jax]'",
    "torch": "pip install -c constraints-cpu.txt 'keras-robust[torch]'",
    "sklearn": "pip install 'keras-robust[tuner]'",
    "tensorboard": "pip install 'keras-robust[tuner]'",
}


def version():
    """The installed distribution's version (``importlib.metadata``), else the package's ``__version__``."""
    from importlib import metadata

    try:
        return metadata.version("keras-robust")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        from keras_robust import __version__

        return __version__


def missing_package_message(error):
    """One line for an ``ImportError``: which optional package is missing and how to install it."""
    name = (getattr(error, "name", None) or "").split(".")[0]
    if not name:  # ``from x import y`` failed inside an installed package
        return f"an optional dependency failed to import ({error})"
    hint = OPTIONAL_PACKAGES.get(name, f"pip install {name}")
    return f"this command needs the optional package {name!r}, which is not installed ({hint})"


class _Usage(Exception):
    """Bad command-line input: printed as ``keras-robust: error: ...``, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _Usage(message)


def _int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    return value


def _float(text):
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None


def _logit_model(args):
    from keras_robust.calibration import LogitModel

    try:
        return LogitModel(mean=args.logit_mean, std=args.logit_std)
    except (TypeError, ValueError) as e:
        raise _Usage(str(e)) from None


def _check_classes(k):
    if k < 2:
        raise _Usage(f"--classes must be an integer >= 2, got {k}.")
    return k


def _match_samples(k, samples):
    if samples is not None:
        if samples < 2:
            raise _Usage(f"--samples must be an integer >= 2, got {samples}.")
        return samples
    return int(min(2048, max(128, 2**21 // k)))


def calibrate(num_classes, target=0.15, logits=None, samples=None, seed=0):
    """eps(K) and the paper's losses' hyperparameters transferred to ``K`` (a JSON-able dict).

    - ``mae*``: ``epsilon = eps(K)`` solving Eq. 4 with ``<a_k> = target``.
    - ``gce``: ``q`` keeping ``<delta_k>(0)`` of (K = 100, q = 0.7) (Sec. 3.3).
    - ``nce+agce``: `keras_robust.calibration.transfer_nce_agce`: ``alpha``
      keeping ``<delta_k>(0)`` of the literature's setting at the nearest
      reference K (CIFAR-100's for K >= 32), with ``beta = 0.7, a = q = 0.05``
      for K > 100 (the paper's appendix 4 shape), the reference's otherwise.

    A transfer that has no solution in its parameter range is reported with
    ``"feasible": False`` and the reason (e.g. genCE would need ``q > 1`` for K < 100).
    """
    from keras_robust.calibration import LogitModel, epsilon_for_classes, match_hyperparameter
    from keras_robust.calibration.transfer import nce_agce_rule, transfer_nce_agce

    model = LogitModel() if logits is None else logits
    eps = epsilon_for_classes(num_classes, target=target, logits=model)
    n = _match_samples(num_classes, samples)
    out = {
        "num_classes": num_classes,
        "target": target,
        "logits": {"mean": model.mean, "std": model.std},
        "samples": n,
        "mae*": {"epsilon": eps, "reference": f"Eq. 4: <a_k>(epsilon) = {target:g} for logits N({model.mean:g}, {model.std:g}^2)"},
    }

    too_large = None
    if n * num_classes > MAX_TRANSFER_DRAWS:
        fewer = MAX_TRANSFER_DRAWS // num_classes
        too_large = (f"the Monte-Carlo transfer would hold samples * K = {n} * {num_classes} draws, more than "
                     f"{MAX_TRANSFER_DRAWS}; " + (f"use --samples <= {fewer} for a rough estimate" if fewer >= 2
                                                  else "K is too large for it"))

    def transfer(key, fn, reference):
        if too_large is not None:
            out[key] = {"feasible": False, "reason": too_large, "reference": reference}
            return None
        try:
            m = fn()
        except MemoryError as e:
            out[key] = {"feasible": False, "reason": f"out of memory ({type(e).__name__})", "reference": reference}
            return None
        except ValueError as e:
            out[key] = {"feasible": False, "reason": str(e), "reference": reference}
            return None
        out[key] = {"feasible": True, "reference": reference, "target_delta0": m.target,
                    m.param: m.value, f"{m.param}_se": m.value_se}
        return m

    k_ref, q_ref = GCE_REFERENCE
    transfer("gce", lambda: match_hyperparameter(
        "gce", "q", reference=GCE_REFERENCE, num_classes=num_classes, bracket=(1e-3, 1.0),
        logits=model, samples=n, seed=seed),
        f"<delta_k>(0) of genCE with q = {q_ref:g} at K = {k_ref} (paper Sec. 3.3)")
    m = transfer("nce+agce", lambda: transfer_nce_agce(num_classes, logits=model, samples=n, seed=seed),
                 nce_agce_rule(num_classes))
    if m is not None:
        out["nce+agce"].update(m.params, method=m.method)
    return out


def _print_calibration(result):
    k = result["num_classes"]
    print(f"K = {k}, target <a_k> = C = {result['target']:g}, initial logits "
          f"N({result['logits']['mean']:g}, {result['logits']['std']:g}^2)")
    print(f"  epsilon(K) = {result['mae*']['epsilon']:.6f}   (MAE*: {result['mae*']['reference']})")
    for key, label, param in (("gce", "genCE", "q"), ("nce+agce", "NCE-AGCE", "alpha")):
        r = result[key]
        if r["feasible"]:
            extra = "".join(f", {p} = {r[p]:g}" for p in ("beta", "a", "q")) if key == "nce+agce" else ""
            print(f"  {label}: {param} = {r[param]:.4f} +- {r[param + '_se']:.4f}{extra}   "
                  f"(keeps <delta_k>(0) = {r['target_delta0']:.5f}: {r['reference']})")
        else:
            print(f"  {label}: no transfer ({r['reason']})   [reference: {r['reference']}]")
    print(f"  (Monte Carlo: {result['samples']} draws per z, common random numbers; +- is one standard error)")


def _cmd_calibrate(args):
    k = _check_classes(args.classes)
    if not 0.0 < args.target < 1.0:
        raise _Usage(f"--target must lie in (0, 1), got {args.target:g}.")
    result = calibrate(k, target=args.target, logits=_logit_model(args), samples=args.samples, seed=args.seed)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_calibration(result)
    return 0


def _cmd_curves(args):
    from keras_robust import losses, plots

    k = _check_classes(args.classes)
    names = [n.strip() for n in args.losses.split(",") if n.strip()]
    if not names:
        raise _Usage(f"--losses must list loss names separated by commas, got {args.losses!r}.")
    for n in names:
        key = losses.canonical_name(n)
        if key not in losses.names() and not ("+" in key and all(p in losses.names() for p in key.split("+"))):
            raise _Usage(f"unknown loss {n!r} in --losses; known: {', '.join(losses.names())}.")
    if args.samples is not None and args.samples < 2:
        raise _Usage(f"--samples must be an integer >= 2, got {args.samples}.")
    dataset = None if args.dataset == "none" else args.dataset
    plots.error_curves_figure(names, k, dataset=dataset, logits=_logit_model(args), samples=args.samples,
                              seed=args.seed, path=args.out)
    print(args.out)
    return 0


def _cmd_figures(args):
    from keras_robust import plots

    plots.all_figures(args.out, verbose=True)
    return 0


def _experiments():
    try:
        from keras_robust import experiments
    except ImportError as e:
        raise _Usage(f"keras_robust.experiments is not available: {e}") from None
    return experiments


def _cmd_train(args):
    import dataclasses

    experiments = _experiments()
    overrides = {}
    for item in args.set or ():
        name, sep, value = item.partition("=")
        if not sep:
            raise _Usage(f"--set expects FIELD=VALUE, got {item!r}.")
        try:
            overrides[name] = json.loads(value)
        except json.JSONDecodeError:
            overrides[name] = value
    for name in ("noise", "noise_rate", "seed", "epochs"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.loss_params:
        try:
            overrides["loss_params"] = json.loads(args.loss_params)
        except json.JSONDecodeError as e:
            raise _Usage(f"--loss-params must be a JSON object, got {args.loss_params!r} ({e}).") from None
    fields = {f.name for f in dataclasses.fields(experiments.RunConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise _Usage(f"unknown RunConfig field(s) {unknown}; known: {sorted(fields)}.")
    try:
        config = experiments.paper_config(args.dataset, args.arch, args.loss, **overrides)
    except (TypeError, ValueError) as e:
        raise _Usage(str(e)) from None
    try:
        history = experiments.run(config, args.results, distribute=False if args.no_distribute else "auto",
                                  force=args.force, stop_on_stall=args.stop_on_stall)
    except experiments.RunError as e:
        raise _Usage(str(e)) from None
    print(json.dumps({"run_id": history.get("run_id"), "results": args.results,
                      "final": (history.get("epochs") or [None])[-1]}, indent=2, default=str))
    return 0


def _cmd_report(args):
    if not os.path.isdir(args.results):
        raise _Usage(f"--results {args.results!r} is not a directory.")
    experiments = _experiments()
    result = experiments.report(args.results, out_dir=args.out)
    print(result.get("markdown", "") if isinstance(result, dict) else result)
    return 0


def _preflight_inputs(model, data, batch, seed):
    import numpy as np

    from keras_robust import datasets

    shape = getattr(model, "input_shape", None)
    if not isinstance(shape, tuple) or any(d is None for d in shape[1:]):
        raise _Usage(f"the model must take one input of a fixed shape, got input_shape {shape!r}.")
    shape = tuple(shape[1:])
    if data == "random":  # the statistics of normalised images: every input N(0, 1)
        return np.random.default_rng(seed).standard_normal((batch, *shape)).astype("float32")
    if data in datasets.names():
        x, _ = datasets.load(data, "test", limit=batch, verbose=0)
        i = datasets.info(data)
        x = x.astype("float32") / 255.0
        x = x[..., None] if x.ndim == 3 else x
        x = (x - np.asarray(i.mean, "float32")) / np.asarray(i.std, "float32")  # per channel, as in training
        what = f"--data {data} images of shape {x.shape[1:]}"
    elif data.endswith(".npy"):
        x = np.load(data)[:batch].astype("float32")
        what = f"--data {data} (shape {x.shape[1:]})"
    else:
        raise _Usage(f"--data must be 'random', a data set ({', '.join(datasets.names())}) or a .npy file, "
                     f"got {data!r}.")
    if int(np.prod(x.shape[1:])) != int(np.prod(shape)):
        raise _Usage(f"{what} do not fit the model's input shape {shape}.")
    return x.reshape((len(x), *shape))


def _cmd_preflight(args):
    import dataclasses

    import keras

    from keras_robust import losses
    from keras_robust.diagnostics import preflight

    if args.batch < 1:
        raise _Usage(f"--batch must be an integer >= 1, got {args.batch}.")
    if args.classes is not None:
        _check_classes(args.classes)
    if args.samples is not None and args.samples < 2:
        raise _Usage(f"--samples must be an integer >= 2, got {args.samples}.")
    model = keras.saving.load_model(args.model)
    width = model.output_shape[-1] if isinstance(model.output_shape, tuple) else None
    if args.classes is not None and args.loss is None and width is not None and width != args.classes:
        raise _Usage(f"the model outputs {width} logits per example, not --classes {args.classes}.")
    loss = None
    if args.loss is not None:
        try:
            params = json.loads(args.loss_params) if args.loss_params else {}
        except json.JSONDecodeError as e:
            raise _Usage(f"--loss-params must be a JSON object, got {args.loss_params!r} ({e}).") from None
        loss = losses.get(args.loss, num_classes=args.classes if args.classes is not None else width, **params)
    x = _preflight_inputs(model, args.data, args.batch, args.seed)
    report = preflight(model, loss, x, optimizer=args.optimizer, threshold=args.threshold,
                       samples=args.samples, seed=args.seed)
    if args.json:
        print(json.dumps(dataclasses.asdict(report), indent=2))
    else:
        print(report)
    return 0 if report.learns else 1


def _parser():
    p = _Parser(prog="keras-robust", description=__doc__.split("\n")[0])
    p.add_argument("--version", action="version", version=f"keras-robust {version()}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def logit_options(s):
        s.add_argument("--logit-std", type=_float, default=1.0, help="std of the initial logits (default 1)")
        s.add_argument("--logit-mean", type=_float, default=0.0, help="mean of the initial logits (default 0)")
        s.add_argument("--samples", type=_int, default=None, help="Monte-Carlo draws per z")
        s.add_argument("--seed", type=_int, default=0)

    c = sub.add_parser("calibrate", help="eps(K) and hyperparameters transferred to K classes")
    c.add_argument("--classes", "-K", type=_int, required=True, help="number of classes K >= 2")
    c.add_argument("--target", type=_float, default=0.15, help="C of Eq. 4 (default 0.15)")
    logit_options(c)
    c.add_argument("--json", action="store_true", help="print JSON")
    c.set_defaults(fn=_cmd_calibrate)

    v = sub.add_parser("curves", help="plot <delta_k>(z_k) of losses at K classes (PNG)")
    v.add_argument("--classes", "-K", type=_int, required=True)
    v.add_argument("--losses", default="ce,mae,gce,nce+agce", help="comma-separated registry names")
    v.add_argument("--dataset", default="cifar10", help="paper parameters of this data set, or 'none'")
    v.add_argument("--out", required=True, help="PNG path")
    logit_options(v)
    v.set_defaults(fn=_cmd_curves)

    f = sub.add_parser("figures", help="write the paper's calibration figures (PNG)")
    f.add_argument("--out", default="docs/figures")
    f.set_defaults(fn=_cmd_figures)

    t = sub.add_parser("train", help="one training run (keras_robust.experiments.run)")
    t.add_argument("--dataset", default="fashion_mnist")
    t.add_argument("--arch", default="mlp1024")
    t.add_argument("--loss", default="ce")
    t.add_argument("--loss-params", default=None, help='JSON, e.g. \'{"epsilon": 0.5}\'')
    t.add_argument("--noise", default=None)
    t.add_argument("--noise-rate", type=_float, default=None)
    t.add_argument("--seed", type=_int, default=None)
    t.add_argument("--epochs", type=_int, default=None)
    t.add_argument("--set", action="append", metavar="FIELD=VALUE", help="any other RunConfig field")
    t.add_argument("--results", default="results")
    t.add_argument("--force", action="store_true", help="retrain from scratch, discarding checkpoints and results")
    t.add_argument("--stop-on-stall", action="store_true",
                   help="stop a run that is not learning (at chance with a frozen loss) or whose logits exploded")
    t.add_argument("--no-distribute", action="store_true", help="never run data-parallel")
    t.set_defaults(fn=_cmd_train)

    pf = sub.add_parser("preflight", help="will this loss learn with this saved, freshly initialised model? "
                        "(exit 0: yes, 1: no, 2: bad input)")
    pf.add_argument("--model", required=True, help="a saved Keras model (.keras) that outputs logits")
    pf.add_argument("--loss", default=None, help="registry name (default: the model's compiled loss)")
    pf.add_argument("--loss-params", default=None, help='JSON, e.g. \'{"q": 0.7}\'')
    pf.add_argument("--classes", "-K", type=_int, default=None, help="K of the loss (must be the output width)")
    pf.add_argument("--data", default="random",
                    help="inputs: 'random' (N(0, 1), like normalised images), a data set name, or a .npy file")
    pf.add_argument("--batch", type=_int, default=256, help="examples in the batch (default 256)")
    pf.add_argument("--optimizer", default=None, help="e.g. sgd, adam (default: the model's compiled one)")
    pf.add_argument("--threshold", type=_float, default=0.01, help="overlap below which it does not learn")
    pf.add_argument("--samples", type=_int, default=None, help="Monte-Carlo draws per z_k")
    pf.add_argument("--seed", type=_int, default=0)
    pf.add_argument("--json", action="store_true", help="print the report as JSON")
    pf.set_defaults(fn=_cmd_preflight)

    r = sub.add_parser("report", help="tables and plots of all runs (keras_robust.experiments.report)")
    r.add_argument("--results", default="results")
    r.add_argument("--out", default=None)
    r.set_defaults(fn=_cmd_report)
    return p


def main(argv: "list[str] | None" = None) -> int:
    """Run the CLI; returns the exit status (0; 1: ``preflight`` found a loss that will not
    learn; 2: bad input, a missing optional package, or a request too large)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        return args.fn(args)
    except SystemExit as e:  # --version, --help
        return e.code if isinstance(e.code, int) else 0
    except ImportError as e:  # ModuleNotFoundError included
        print(f"keras-robust: error: {missing_package_message(e)}", file=sys.stderr)
        return 2
    except MemoryError as e:
        print(f"keras-robust: error: out of memory ({e or 'the request is too large'})", file=sys.stderr)
        return 2
    except (_Usage, ValueError, TypeError, OSError) as e:
        print(f"keras-robust: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
