"""One MLP1024 run with the appendix's setup (SGD momentum 0.95, batch 32, lr x0.95/epoch,
learning rate of appendix Table 2 per loss, MAE* with epsilon 0.5)::

    KERAS_BACKEND=jax python -m recipes.mlp1024 --dataset fashion_mnist --loss mae* \\
        --noise symmetric --rate 0.4 --seed 0 --epochs 50
"""

from recipes import run_single


def main(argv=None):
    return run_single(__doc__.splitlines()[0], argv, arch="mlp1024")


if __name__ == "__main__":
    main()
