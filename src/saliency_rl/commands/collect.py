"""``saliency-rl collect``: roll out a behaviour policy into a dataset."""

from __future__ import annotations

import argparse

from saliency_rl.commands.args import (
    add_choice,
    add_env_options,
    add_run_options,
    env_options,
    given,
    non_negative_int,
    positive_int,
)

HELP = "roll out a policy into a dataset"
DESCRIPTION = (
    "Roll out a behaviour policy into a dataset directory (created, or appended to "
    "if it holds the same env spec and options)."
)


def run(args: argparse.Namespace) -> None:
    from saliency_rl.data.collect import collect

    dataset = collect(
        args.env,
        args.out,
        env_options=env_options(args),
        **given(args, "progress", "episodes", "frames", "policy", "seed", "depth"),
        background=False if args.no_background else None,
    )
    print(dataset.summary())


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env",
        required=True,
        help="env spec: dmc:cartpole-swingup, metaworld:drawer-open, atari:MsPacman",
    )
    parser.add_argument("--out", required=True, help="dataset directory")
    budget = parser.add_mutually_exclusive_group(required=True)
    budget.add_argument("--episodes", type=positive_int, help="number of episodes")
    budget.add_argument(
        "--frames", type=positive_int, help="number of frames (the last episode is cut)"
    )
    add_choice(
        parser,
        "--policy",
        ("random", "expert"),
        "behaviour policy: random, or expert (Meta-World's scripted policy)",
    )
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="base seed; episode i uses seed+i (0)"
    )
    parser.add_argument(
        "--depth",
        action="store_true",
        help="also store MuJoCo's depth render (for MultiMAE's depth and normals modalities)",
    )
    parser.add_argument(
        "--no-background",
        action="store_true",
        help="do not store background masks (stored by default for dmc and metaworld: they let "
        "train-saliency replace the background so predictors ignore distractors)",
    )
    add_run_options(parser, device=None)
    add_env_options(parser)
