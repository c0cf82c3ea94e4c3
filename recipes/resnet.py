"""One ResNet run with the appendix's setup (SGD 0.1, momentum 0.9, weight decay 1e-4, batch 128,
lr x0.1 at epochs 100/150 for 10 classes, x0.2 at 60/120/160 for CIFAR-100, augmentation)::

    KERAS_BACKEND=jax python -m recipes.resnet --dataset cifar10 --arch resnet32 --loss mae* \\
        --noise symmetric --rate 0.4 --seed 0 --epochs 200

The CIFAR-N paper's setup (ResNet-34, 100 epochs, coupled L2 5e-4, lr x0.1 at epoch 60) on its
human labels, with its cross-entropy figures as the reference line
(keras_robust.experiments.cifar_n_config: aggre 87.77, random1 85.02, worse 77.69 % test accuracy)::

    KERAS_BACKEND=jax python -m recipes.resnet --setup cifar-n --labels worse --loss ce

A full CIFAR ResNet-32 epoch takes minutes on a CPU: use a GPU, or --limit for a smoke run.
"""

from recipes import run_single


def main(argv=None):
    return run_single(__doc__.splitlines()[0], argv, dataset="cifar10", arch="resnet32")


if __name__ == "__main__":
    main()
