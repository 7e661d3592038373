"""``saliency-rl sweep GRID.yaml``: every (task x method x seed x options) run of a grid."""

from __future__ import annotations

import argparse

from saliency_rl.commands.args import add_run_options, positive_int

HELP = "run a grid of (task x method x seed) runs locally or on a Ray cluster"
DESCRIPTION = (
    "Expand a grid file into runs, each a `saliency-rl train ...` command with "
    "its log in RUN/sweep.log; run them in a local process pool (default: as many as the "
    "cores allow) or on Ray (--ray ADDRESS, or --ray local). Restarting skips finished "
    "runs and resumes unfinished ones; a failed run does not stop the others. Then "
    "`saliency-rl report OUT` makes the tables. Shipped grids: --list."
)


def run(args: argparse.Namespace) -> None:
    from saliency_rl.experiments.sweep import load_grid, run_sweep, shipped_grids

    if args.list or args.grid is None:
        import yaml

        from saliency_rl.errors import SaliencyRLError

        if args.grid is None and not args.list:
            raise SaliencyRLError(
                "sweep needs a grid: a YAML file or a shipped grid's name (--list)"
            )
        for path in shipped_grids():
            data = yaml.safe_load(path.read_text()) or {}
            print(f"{path.stem:28s} {data.get('hardware', '')}")
            print(f"{'':28s} {data.get('description', '')}")
        return
    grid = load_grid(args.grid, args.out, parser=args.parser)
    if args.dry_run:
        import shlex

        for run in grid.runs:
            print(shlex.join(["saliency-rl", *run.argv]))
        return
    outcomes = run_sweep(grid, workers=args.workers, ray=args.ray)
    failed = [o.name for o in outcomes if o.status == "failed"]
    if failed:
        from saliency_rl.errors import SaliencyRLError

        raise SaliencyRLError(
            f"{len(failed)} of {len(outcomes)} runs failed ({', '.join(failed[:5])}"
            + (", ..." if len(failed) > 5 else "")
            + "); their logs are shown above; run the same command again to retry them"
        )


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "grid", nargs="?", help="grid YAML file, or the name of a shipped grid (e.g. tiny)"
    )
    parser.add_argument(
        "--workers", type=positive_int, help="runs at once (default: cores / num_cpus per run)"
    )
    parser.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run on Ray: a cluster address (e.g. auto, ray://host:10001) or 'local' to start "
        "a local instance; each run asks for the grid's num_cpus / num_gpus",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the commands and stop")
    parser.add_argument("--list", action="store_true", help="list the shipped grids and stop")
    add_run_options(
        parser, out="sweep directory (default: runs/sweep_<grid name>)", device=None, progress=False
    )
