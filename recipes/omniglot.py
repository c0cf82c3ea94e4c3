"""High-K demonstration: Omniglot (242 characters as classes) with MLP1024, CE vs MAE vs MAE*.

    KERAS_BACKEND=jax python -m recipes.omniglot            # a few minutes on a 2-core CPU

The paper's claim (Sec. 3): at a large number of classes K a bounded loss such
as MAE barely learns, because at initialisation every true-class probability
is about 1/K and MAE's gradient vanishes there; adding the logit bias
epsilon(K) of Eq. 4 (MAE*) restores learning, as CE learns. Omniglot has many
classes and few examples: the two "images_background_small" sets of
../shared/data/omniglot give 242 distinct characters x 20 drawings (15 train /
5 test per class, a seeded stratified split), downsampled to 28x28 for the MLP.
All three losses use the same setup (MLP1024, SGD momentum 0.95, batch 32,
lr x0.95 per epoch, the same initial learning rate) so that only the loss differs.
"""

import argparse
import os
import time


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--lr", type=float, default=0.01, help="initial learning rate, the same for every loss")
    p.add_argument("--losses", default="ce,mae,mae*")
    p.add_argument("--seeds", default="0")
    p.add_argument("--rate", type=float, default=0.0, help="symmetric noise rate")
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--shard", default="1/1")
    p.add_argument("--results", default="results/omniglot-mlp1024")
    p.add_argument("--plot", default=None, help="default: <results>/omniglot-learning-curves.png")
    args = p.parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "jax")
    from keras_robust import datasets
    from keras_robust import experiments as ex
    from keras_robust.calibration import epsilon_for_classes
    from keras_robust.losses import canonical_name

    k = datasets.num_classes("omniglot")
    eps = float(epsilon_for_classes(k))
    configs = []
    for loss in args.losses.split(","):
        params = {"epsilon": round(eps, 4)} if canonical_name(loss) == "mae*" else {}
        for s in args.seeds.split(","):
            configs.append(ex.paper_config(
                "omniglot", "mlp1024", loss, loss_params=params, lr=args.lr, epochs=args.epochs,
                noise="symmetric" if args.rate else "none", noise_rate=args.rate, seed=int(s),
                limit=args.limit, data_options={"image_size": [args.image_size, args.image_size]},
            ))
    t0 = time.perf_counter()
    histories = ex.grid(configs, args.results, shard=args.shard)
    agg = ex.aggregate(histories)
    (table,) = agg
    print()
    print(f"Omniglot, K = {k} classes, MLP1024, {args.epochs} epochs, lr {args.lr:g}, "
          f"noise {100 * args.rate:g} %, seeds {args.seeds}; MAE* epsilon(K={k}) = {eps:.3f} (Eq. 4, C = 0.15); "
          f"chance = {100 / k:.2f} % ({(time.perf_counter() - t0) / 60:.1f} min)")
    print("| loss | final test acc. (%) | best test acc. (%) | final train acc. (%) |")
    print("|---|---|---|---|")
    for (label, _, _), c in sorted(agg[table].items(), key=lambda kv: {"CE": 0, "MAE": 1}.get(kv[0][0], 2)):
        se = f" ± {100 * c['se']:.2f}" if c["n"] > 1 else ""
        print(f"| {label} | {100 * c['mean']:.2f}{se} | {100 * c['best_mean']:.2f} | "
              f"{100 * c['curves']['accuracy'][-1]:.2f} |")
    path = ex.plot_curves(agg, args.plot or os.path.join(args.results, "omniglot-learning-curves.png"), table)
    print(f"learning curves: {path}")
    return agg


if __name__ == "__main__":
    main()
