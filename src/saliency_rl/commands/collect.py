"""``saliency-rl collect``: roll out a behaviour policy into a dataset."""

from __future__ import annotations

import argparse

from saliency_rl.commands.args import (
    add_env_options,
    add_run_options,
    env_options,
    non_negative_int,
    positive_int,
)


def cmd_collect(args: argparse.Namespace) -> None:
    from saliency_rl.data.collect import collect

    dataset = collect(
        args.env,
        args.out,
        episodes=args.episodes,
        frames=args.frames,
        policy=args.policy,
        seed=args.seed,
        env_options=env_options(args),
        depth=args.depth,
        progress=not args.no_progress,
    )
    print(dataset.summary())


def register(commands: argparse._SubParsersAction, train: argparse._SubParsersAction) -> None:
    collect = commands.add_parser(
        "collect",
        help="roll out a policy into a dataset",
        description="Roll out a behaviour policy into a dataset directory (created, or appended to "
        "if it holds the same env spec and options).",
    )
    collect.add_argument(
        "--env",
        required=True,
        help="env spec: dmc:cartpole-swingup, metaworld:drawer-open, atari:MsPacman",
    )
    collect.add_argument("--out", required=True, help="dataset directory")
    budget = collect.add_mutually_exclusive_group(required=True)
    budget.add_argument("--episodes", type=positive_int, help="number of episodes")
    budget.add_argument(
        "--frames", type=positive_int, help="number of frames (the last episode is cut)"
    )
    collect.add_argument(
        "--policy",
        choices=("random", "expert"),
        default="random",
        help="behaviour policy: random, or expert (Meta-World's scripted policy)",
    )
    collect.add_argument(
        "--seed", type=non_negative_int, default=0, help="base seed; episode i uses seed+i (0)"
    )
    collect.add_argument(
        "--depth",
        action="store_true",
        help="also store MuJoCo's depth render (for MultiMAE's depth and normals modalities)",
    )
    add_run_options(collect, device=None)
    add_env_options(collect)
    collect.set_defaults(handler=cmd_collect)
