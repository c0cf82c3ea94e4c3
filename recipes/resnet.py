"""One ResNet run with the appendix's setup (SGD 0.1, momentum 0.9, weight decay 1e-4, batch 128,
lr x0.1 at epochs 100/150 for 10 classes, x0.2 at 60/120/160 for CIFAR-100, augmentation)::

    KERAS_BACKEND=jax python -m recipes.resnet --dataset cifar10 --arch resnet32 --loss mae* \\
        --noise symmetric --rate 0.4 --seed 0 --epochs 200

A full CIFAR ResNet-32 epoch takes minutes on a CPU: use a GPU, or --limit for a smoke run.
"""

from recipes import check_backend, common_parser, configs


def main(argv=None):
    p = common_parser(__doc__.splitlines()[0], dataset="cifar10", arch="resnet32")
    args = p.parse_args(argv)
    check_backend(args)
    from keras_robust import experiments as ex

    (config,) = configs(args, [args.loss], [args.rate], [args.seed])
    h = ex.run(config, args.results, verbose=0 if args.quiet else 1,
               distribute=False if args.no_distribute else "auto")
    last = h["epochs"][-1]
    print(f"final test accuracy {100 * last['test_accuracy']:.2f} % after {last['epoch']} epochs")
    return h


if __name__ == "__main__":
    main()
