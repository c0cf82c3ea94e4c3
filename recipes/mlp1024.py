"""One MLP1024 run with the appendix's setup (SGD momentum 0.95, batch 32, lr x0.95/epoch,
learning rate of appendix Table 2 per loss, MAE* with epsilon 0.5)::

    KERAS_BACKEND=jax python -m recipes.mlp1024 --dataset fashion_mnist --loss mae* \\
        --noise symmetric --rate 0.4 --seed 0 --epochs 50
"""

from recipes import check_backend, common_parser, configs


def main(argv=None):
    p = common_parser(__doc__.splitlines()[0], arch="mlp1024")
    args = p.parse_args(argv)
    check_backend(args)
    from keras_robust import experiments as ex

    (config,) = configs(args, [args.loss], [args.rate], [args.seed])
    h = ex.run(config, args.results, verbose=0 if args.quiet else 1,
               distribute=False if args.no_distribute else "auto")
    last = h["epochs"][-1]
    print(f"final test accuracy {100 * last['test_accuracy']:.2f} % after {last['epoch']} epochs "
          f"({ex.run_dir(config, args.results)}/history.json)")
    return h


if __name__ == "__main__":
    main()
