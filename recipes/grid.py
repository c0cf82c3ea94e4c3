"""A grid of runs (losses x noise rates x seeds), optionally one shard of it::

    KERAS_BACKEND=jax python -m recipes.grid --dataset fashion_mnist --arch mlp1024 \\
        --losses ce,mae,mae* --rates 0,0.4 --seeds 0,1,2 --epochs 15 --shard 1/2 --results results/fmnist

Machines given the same grid and different shards (1/n ... n/n) share the work
and one results directory; `python -m recipes.report --results ...` merges them.
The same command with ``--status`` trains nothing: it lists the shard's runs
(finished, started at epoch e, to do) and the time left at the epoch times
recorded so far. ``--deadline 08:10`` (or ``+2h``, or an ISO date and time)
starts no run that would end after it at the epoch times recorded so far:
a session or job with a time limit loses no half-trained run.
"""

from recipes import check_backend, common_parser, configs


def main(argv=None):
    p = common_parser(__doc__.splitlines()[0], grid=True)
    p.add_argument("--report", action="store_true", help="print the report after the shard is done")
    p.add_argument("--status", action="store_true",
                   help="print where this shard's runs stand and the time left, train nothing")
    p.add_argument("--deadline", default=None,
                   help="start no run that would end after this time at the epoch times recorded so far: "
                        "HH:MM (the next such local time), +90m / +2h, an ISO date and time or POSIX seconds")
    args = p.parse_args(argv)
    check_backend(args)
    from keras_robust import experiments as ex

    try:
        deadline = None if args.deadline is None else ex.parse_deadline(args.deadline)
    except ValueError as e:
        p.error(f"argument --deadline: {e}")

    grid = configs(args, args.losses, args.rates, args.seeds)
    if args.status:
        rows = ex.status(grid, args.results, shard=args.shard)
        print(ex.format_status(rows, shard=args.shard))
        return rows
    hs = ex.grid(grid, args.results, shard=args.shard, verbose=0 if args.quiet else 1, force=args.force,
                 stop_on_stall=args.stop_on_stall, distribute=False if args.no_distribute else "auto",
                 deadline=deadline)
    if args.report:
        ex.report(args.results)
    if any("error" in h for h in hs):
        raise SystemExit(1)
    return hs


if __name__ == "__main__":
    main()
