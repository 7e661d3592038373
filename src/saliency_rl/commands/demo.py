"""``saliency-rl demo``: ViSaRL's Algorithm 1 end to end on a small default task."""

from __future__ import annotations

import argparse

from saliency_rl.commands.args import (
    DISTRACTOR_HELP,
    add_choice,
    add_run_options,
    distractor_mode,
    given,
    non_negative_int,
    positive_int,
)

HELP = "run the whole ViSaRL pipeline end to end on a small default task"
DESCRIPTION = (
    "Collect frames with a random policy, annotate 10 (oracle, or you in the "
    "browser), train the saliency predictor, label the dataset, pretrain MultiMAE on "
    "(RGB, saliency), train SAC on the frozen features, evaluate clean and under a "
    "distractor, and write a report (OUT/report/index.html). The default budget takes "
    "under 15 minutes on 2 CPU cores. Run the same command again to continue an "
    "interrupted demo: finished stages are skipped."
)


def run(args: argparse.Namespace) -> None:
    from saliency_rl.experiments.demo import run_demo

    run_demo(
        args.out,
        env_spec=args.env,
        collect_episodes=args.episodes,
        **given(
            args,
            "progress",
            "preset",
            "scale",
            "annotate",
            "port",
            "device",
            "seed",
            "annotate_frames",
        ),
        **given(args, "distractor", "until"),
    )


def add_options(parser: argparse.ArgumentParser) -> None:
    add_choice(
        parser,
        "--preset",
        ("cpu", "paper", "tiny"),
        "budgets: cpu (default, minutes on a laptop CPU), paper (ViSaRL's settings, "
        "for a GPU: hours), tiny (seconds, a smoke test)",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply every budget (episodes, training steps, evaluation episodes) by this",
    )
    add_choice(
        parser,
        "--annotate",
        ("oracle", "browser"),
        "oracle (default): the simulator clicks the task's bodies; browser: you click, "
        "on a local web page the demo opens and waits on",
    )
    parser.add_argument(
        "--port", type=non_negative_int, default=8765, help="port of --annotate browser (8765)"
    )
    parser.add_argument("--env", help="task spec (default: dmc:cartpole-swingup)")
    parser.add_argument("--episodes", type=positive_int, help="episodes to collect (preset's)")
    parser.add_argument("--annotate-frames", type=positive_int, help="frames to annotate (10)")
    parser.add_argument(
        "--distractor",
        type=distractor_mode,
        metavar="MODE",
        help="distractor of the robustness evaluation (color_hard): " + DISTRACTOR_HELP,
    )
    parser.add_argument("--seed", type=non_negative_int, help="random seed (0)")
    parser.add_argument(
        "--until",
        choices=("collect", "annotate", "predictor", "label", "pretrain", "sac", "evaluate"),
        help="stop after this stage (sweeps use --until pretrain to prepare a task's "
        "predictor and MultiMAE: OUT/predictor, OUT/multimae)",
    )
    add_run_options(parser, out="output directory (default: runs/demo; run again to continue)")
