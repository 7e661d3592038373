"""``saliency-rl demo``: ViSaRL's pipeline end to end, with and without saliency side by side."""

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

HELP = "run the whole pipeline end to end: two arms, without and with saliency, and a verdict"
DESCRIPTION = (
    "Collect demonstrations (or frames), annotate 10 (oracle, or you in the browser), "
    "train the saliency predictor, label the dataset, pretrain the frozen encoder, train "
    "two arms on the same data and budget (without saliency: rgb; with it: rgb_x_saliency, "
    "frames multiplied by the predicted map), evaluate both clean and under a video "
    "distractor, and write a report (OUT/report/index.html) that opens with the measured "
    "verdict. The default (behaviour cloning on Meta-World drawer-open) takes about 10 "
    "minutes on 2 CPU cores; --preset paper is ViSaRL's SAC setting (hours, asks for --yes). "
    "Run the same command again to continue an interrupted demo: finished stages are skipped."
)


def run(args: argparse.Namespace) -> None:
    from saliency_rl.experiments.demo import run_demo

    run_demo(
        args.out,
        env_spec=args.env,
        collect_episodes=args.episodes,
        arms=tuple(args.arms) if args.arms else None,
        yes=args.yes,
        **given(args, "seed", "annotate_frames", "distractor"),
        **given(
            args,
            "progress",
            "preset",
            "scale",
            "annotate",
            "port",
            "device",
            "until",
        ),
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
    parser.add_argument(
        "--env", help="task spec (cpu default: metaworld:drawer-open; paper: dmc:cartpole-swingup)"
    )
    parser.add_argument(
        "--arms",
        nargs=2,
        metavar=("WITHOUT", "WITH"),
        help="frozen-encoder modes of the two arms, without and with saliency (cpu: rgb "
        "rgb_x_saliency; paper: rgb rgb+saliency)",
    )
    parser.add_argument("--episodes", type=positive_int, help="episodes to collect (preset's)")
    parser.add_argument("--annotate-frames", type=positive_int, help="frames to annotate (10)")
    parser.add_argument(
        "--distractor",
        type=distractor_mode,
        metavar="MODE",
        help="distractor of the robustness evaluation (video_easy): " + DISTRACTOR_HELP,
    )
    parser.add_argument("--seed", type=non_negative_int, help="random seed (0)")
    parser.add_argument(
        "--until",
        choices=("collect", "annotate", "predictor", "label", "pretrain", "train", "evaluate"),
        help="stop after this stage (sweeps use --until pretrain to prepare a task's "
        "predictor and MultiMAEs: OUT/predictor, OUT/multimae, OUT/multimae_rgb)",
    )
    parser.add_argument(
        "--yes",
        action="store_true",
        help="start a demo estimated at an hour or more (the paper preset) without asking",
    )
    add_run_options(parser, out="output directory (default: runs/demo; run again to continue)")
