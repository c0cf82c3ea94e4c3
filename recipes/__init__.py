"""The paper's experiments as command-line scripts (``python -m recipes.<name> --help``).

Each recipe builds `keras_robust.experiments.RunConfig` objects with the
appendix's training setup as defaults and hands them to
`keras_robust.experiments.run` / `grid` / `report`. The library never imports
this package.
"""

import argparse
import json
import os
import re
import sys


def _csv(kind):
    def parse(text):
        try:
            values = [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__} values, got {text!r}") from None
        if not values:
            raise argparse.ArgumentTypeError(f"expected at least one value, got {text!r}")
        return values
    return parse


def _rate(text):
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"noise rates must lie in [0, 1], got {value:g}")
    return value




def _shard(text):
    """``"i/n"`` with ``1 <= i <= n`` (checked here, without importing Keras before the backend is set)."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise argparse.ArgumentTypeError(f"`shard` must be 'i/n' with 1 <= i <= n (e.g. '2/4'), got {text!r}")
    return text


def _json_dict(text):
    value = json.loads(text)
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def common_parser(description, dataset="fashion_mnist", arch="mlp1024", grid=False):
    """Arguments shared by the recipes. ``grid=True``: comma-separated lists for
    losses, noise rates and seeds, plus ``--shard``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--dataset", default=dataset)
    p.add_argument("--setup", default="paper", choices=["paper", "cifar-n"],
                   help="training setup: the paper's appendix (default) or the CIFAR-N paper's "
                        "(ResNet-34, 100 epochs, human noise; keras_robust.experiments.cifar_n_config)")
    p.add_argument("--arch", default=None, help=f"network (default: {arch}; resnet34 with --setup cifar-n)")
    p.set_defaults(default_arch=arch)
    if grid:
        p.add_argument("--losses", type=_csv(str), default=["ce", "mae", "mae*"],
                       help="comma-separated loss registry names")
        p.add_argument("--rates", type=_csv(_rate), default=[0.0, 0.4], help="comma-separated noise rates")
        p.add_argument("--seeds", type=_csv(int), default=[0, 1, 2])
        p.add_argument("--shard", type=_shard, default="1/1", help="run only shard i/n of the grid (1 <= i <= n)")
    else:
        p.add_argument("--loss", default="ce",
                       help="loss registry name (ce, mae, mae*, gce, nce+agce, ...)")
        p.add_argument("--rate", type=_rate, default=0.0, help="noise rate")
        p.add_argument("--seed", type=int, default=0)
    p.add_argument("--loss-params", type=_json_dict, default=None,
                   help='JSON object of loss parameters, e.g. \'{"epsilon": 0.5}\'')
    p.add_argument("--noise", default=None, choices=["symmetric", "asymmetric", "none", "human", "human_matrix"],
                   help="default: symmetric (human with --setup cifar-n); human: CIFAR-10N's real labels "
                        "(--labels); human_matrix: synthetic noise from their estimated transition matrix")
    p.add_argument("--labels", type=_csv(str), default=None,
                   help="CIFAR-10N label set(s) for --noise human|human_matrix: aggre, random1-3, worse "
                        "(comma-separated in a grid)")
    p.add_argument("--noise-any-class", dest="noise_exclude_true", action="store_false", default=None,
                   help="symmetric noise may redraw an example's own class (default: the paper's recipes "
                        "draw from the other classes)")
    p.add_argument("--clipnorm", type=float, default=None,
                   help="clip the global gradient norm (the reference code of the active-passive losses uses 5)")
    p.add_argument("--force", action="store_true", help="retrain from scratch, discarding checkpoints and results")
    p.add_argument("--stop-on-stall", action="store_true",
                   help="stop a run that is not learning (at chance with a frozen loss) or whose logits exploded")
    p.add_argument("--epochs", type=int, default=None, help="default: the paper's")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None, help="initial learning rate (default: the paper's)")
    p.add_argument("--limit", type=int, default=None, help="train on at most this many examples")
    p.add_argument("--test-limit", type=int, default=None)
    p.add_argument("--results", default="results", help="results directory (shared by shards)")
    p.add_argument("--backend", default=None,
                   help="Keras backend; must match KERAS_BACKEND (set it in the environment)")
    p.add_argument("--no-distribute", action="store_true", help="never run data-parallel")
    p.add_argument("--quiet", action="store_true")
    return p


def check_backend(args):
    """Fix the backend (before Keras is imported), then check the loss names and label sets:
    a bad one ends the recipe with argparse's one-line error and exit code 2."""
    if args.backend and args.backend != os.environ.get("KERAS_BACKEND", args.backend):
        raise SystemExit(f"--backend {args.backend} but KERAS_BACKEND={os.environ.get('KERAS_BACKEND')}: "
                         "Keras fixes its backend at import; run with KERAS_BACKEND=" + args.backend)
    if args.backend:
        os.environ["KERAS_BACKEND"] = args.backend
    if os.environ.get("KERAS_DISTRIBUTION_NUM_PROCESSES"):  # several JAX hosts (README): before any device is used
        import keras

        keras.distribution.initialize()
    from keras_robust import datasets, losses

    def fail(argument, message):
        print(f"{os.path.basename(sys.argv[0])}: error: argument {argument}: {message}", file=sys.stderr)
        raise SystemExit(2)

    for name in getattr(args, "losses", None) or [args.loss]:
        try:
            losses.get(name, num_classes=10)
        except (ValueError, TypeError) as e:
            fail("--losses" if hasattr(args, "losses") else "--loss", e)
    for label in args.labels or []:
        if label not in datasets.CIFAR10N_LABEL_SETS or label == "clean":
            fail("--labels", f"unknown CIFAR-10N label set {label!r}; known: aggre, random1, random2, random3, worse")


def overrides(args):
    out = {}
    for key in ("epochs", "batch_size", "lr", "limit", "test_limit", "clipnorm", "noise_exclude_true"):
        v = getattr(args, key)
        if v is not None:
            out[key] = v
    if args.loss_params is not None:
        out["loss_params"] = args.loss_params
    return out


def configs(args, losses, rates, seeds, **extra):
    """The grid (losses x rates x seeds) of paper configurations with the CLI's overrides."""
    from keras_robust import experiments as ex

    out = []
    setup = ex.SETUPS[args.setup]
    arch = args.arch or ("resnet34" if args.setup == "cifar-n" else args.default_arch)
    noise = args.noise or ("human" if args.setup == "cifar-n" else "symmetric")
    human = noise in ("human", "human_matrix")
    labels = args.labels or (["worse"] if human and args.setup == "cifar-n" else None)
    if human and not labels:
        raise SystemExit(f"error: --noise {noise} needs --labels (aggre, random1, random2, random3, worse)")
    settings = [dict(noise=noise, noise_rate=0.0, labels=label) for label in labels] if human else [
        dict(noise=noise if rate > 0 else "none", noise_rate=rate) for rate in rates]
    for loss in losses:
        for setting in settings:
            for seed in seeds:
                kw = {**overrides(args), **extra}
                out.append(setup(args.dataset, arch, loss, seed=seed, **setting, **kw))
    return out


def run_single(description, argv=None, **parser_defaults):
    """Parse one run's arguments, train it (resumable), print and return its history."""
    args = common_parser(description, **parser_defaults).parse_args(argv)
    check_backend(args)
    from keras_robust import experiments as ex

    (config,) = configs(args, [args.loss], [args.rate], [args.seed])
    try:
        h = ex.run(config, args.results, verbose=0 if args.quiet else 1, force=args.force,
                   stop_on_stall=args.stop_on_stall, distribute=False if args.no_distribute else "auto")
    except ex.RunError as e:
        raise SystemExit(f"error: {e}") from None
    last = h["epochs"][-1]
    print(f"final test accuracy {100 * last['test_accuracy']:.2f} % after {last['epoch']} epochs "
          f"({ex.run_dir(config, args.results)}/history.json)")
    return h
