"""``saliency-rl evaluate RUN``: a finished run's policy, clean and under distractors, with videos."""

from __future__ import annotations

import argparse

from saliency_rl.commands.args import (
    DISTRACTOR_HELP,
    add_run_options,
    distractor_mode,
    given,
    non_negative_int,
    positive_int,
)

HELP = "evaluate a finished run (sac, bc, a2c), clean or under visual distractors"
DESCRIPTION = (
    "Run a finished run's deterministic policy for N episodes on its own env "
    "(rebuilt from config.json) and write RUN/eval_<distractor>.json (return mean and "
    "std; Meta-World: success rate) and, with --video, MP4s under RUN/videos/ with the "
    "policy's saliency map beside each frame. The distractors are saliency-rl's own "
    "sets (colours drawn around the defaults; procedurally generated moving backgrounds "
    "composited with MuJoCo's segmentation render), for dmc and metaworld runs: their "
    "figures are NOT comparable with published DMControl Generalization Benchmark "
    "numbers, which use real video clips. MODE:PATH uses DMC-GB's own clips and colour "
    "lists from PATH instead (e.g. --distractor video_hard:~/dmcgb), with DMC-GB's protocol; "
    "those results go to RUN/eval_<mode>@<folder>.json."
)


def run(args: argparse.Namespace) -> None:
    from saliency_rl.envs.spec import DISTRACTOR_MODES
    from saliency_rl.evaluation import eval_file_name, evaluate_run

    every = ("clean", *DISTRACTOR_MODES)
    modes = [m for d in args.distractor for m in (every if d == "all" else (d,))]
    for distractor in dict.fromkeys(modes):  # each once, in the order given
        result = evaluate_run(
            args.run,
            distractor=distractor,
            **given(args, "progress", "episodes", "video", "seed", "device", "episode_length"),
        )
        line = f"{result['distractor']:<10} return {result['return_mean']:.1f} ± {result['return_std']:.1f}"
        if "success_rate" in result:
            line += f"  success {result['success_rate']:.2f}"
        line += f"  ({result['episodes']} episodes) -> {args.run}/{eval_file_name(distractor)}"
        for video in result["videos"]:
            line += f", {args.run}/{video}"
        print(line, flush=True)


def add_options(parser: argparse.ArgumentParser) -> None:
    from saliency_rl.evaluation import EVAL_SEED

    parser.add_argument("run", help="run directory (made by `saliency-rl train sac|bc|a2c|acktr`)")
    parser.add_argument(
        "--episodes", type=positive_int, default=10, help="episodes per distractor (10)"
    )
    parser.add_argument(
        "--distractor",
        nargs="+",
        type=lambda text: text if text == "all" else distractor_mode(text),
        default=["clean"],
        metavar="MODE",
        help="one or more of: clean (default), all (clean and our four sets), " + DISTRACTOR_HELP,
    )
    parser.add_argument(
        "--video",
        type=non_negative_int,
        nargs="?",
        const=1,
        default=0,
        metavar="N",
        help="record the first N episodes (1 if N is left out) as MP4 under RUN/videos/",
    )
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=EVAL_SEED,
        help=f"episode i is reset with SEED + i (default {EVAL_SEED}: the same episodes, "
        "colours and backgrounds for every run)",
    )
    parser.add_argument(
        "--episode-length",
        type=positive_int,
        help="cut episodes after N steps (default: the run's own length; recorded in the "
        "JSON); handy for long Atari games",
    )
    add_run_options(parser, device="cpu", threads=True)
