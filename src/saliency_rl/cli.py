"""``saliency-rl <command> [options]``: a thin shell over the library's functions.

Every command maps to one function a notebook user can call directly; errors the library
raises (wrong spec, missing dataset, bad value) end here as one line and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from saliency_rl import __version__
from saliency_rl.errors import SaliencyRLError

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that names the problem and where help is."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def add_env_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("environment options")
    group.add_argument(
        "--image-size", type=positive_int, help="square frame size in pixels (64; Atari 84)"
    )
    group.add_argument(
        "--frame-stack", type=positive_int, help="frames stacked per observation (1; Atari 4)"
    )
    group.add_argument(
        "--action-repeat", type=positive_int, help="times each action is applied (1)"
    )
    group.add_argument(
        "--episode-length", type=positive_int, help="steps before truncation (the suite's limit)"
    )
    group.add_argument("--camera", help="camera name or index (each suite has a default)")
    group.add_argument(
        "--render-quality",
        choices=("fast", "default"),
        default="fast",
        help="fast offscreen rendering (default) or the suite's own visual settings",
    )
    group.add_argument(
        "--preset", help="named paper setting, e.g. dmc-100k, visarl-metaworld, atari"
    )


def env_options(args: argparse.Namespace) -> dict:
    options = {
        "image_size": args.image_size,
        "frame_stack": args.frame_stack,
        "action_repeat": args.action_repeat,
        "episode_length": args.episode_length,
        "camera": args.camera,
        "render_quality": None if args.render_quality == "fast" else args.render_quality,
        "preset": args.preset,
    }
    return {k: v for k, v in options.items() if v is not None}


# ---------------------------------------------------------------------- commands
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
        progress=not args.no_progress,
    )
    print(dataset.summary())


def cmd_annotate(args: argparse.Namespace) -> None:
    from saliency_rl.data.dataset import Dataset
    from saliency_rl.saliency.annotations import annotate_with_oracle

    dataset = Dataset.open(args.dataset)
    if not args.oracle:
        raise SaliencyRLError(
            "this version annotates with the simulator's oracle only: add --oracle "
            "(the click-annotation web page is not available yet)"
        )
    frames = annotate_with_oracle(dataset, args.frames, seed=args.seed)
    print(
        f"oracle annotated {len(frames)} frames of {dataset.root}; clicks in {dataset.root / 'annotations'}"
    )


def cmd_info(args: argparse.Namespace) -> None:
    from saliency_rl.data.dataset import Dataset
    from saliency_rl.saliency.annotations import AnnotationStore

    dataset = Dataset.open(args.dataset)
    print(dataset.summary())
    annotated = AnnotationStore(dataset).annotated()
    print(f"annotated {len(annotated)} frames")


def cmd_envs(args: argparse.Namespace) -> None:
    from saliency_rl.envs import PRESETS, SUITES, task_names

    suites = [args.suite] if args.suite else [s for s in SUITES if s != "fake"]
    for suite in suites:
        names = task_names(suite)
        print(f"{suite} ({len(names)} tasks): " + ", ".join(f"{suite}:{n}" for n in names))
    print("presets:")
    for name, preset in PRESETS.items():
        if not args.suite or preset.suite == args.suite:
            print(f"  {name:18s} {preset.description}")


def cmd_demo(args: argparse.Namespace) -> None:
    from saliency_rl.experiments.demo import run_demo

    run_demo(
        args.out,
        env_spec=args.env,
        episodes=args.episodes,
        annotate_frames=args.annotate_frames,
        seed=args.seed,
    )


# ---------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="saliency-rl",
        description="Visual reinforcement and imitation learning guided by saliency.",
    )
    parser.add_argument("--version", action="version", version=f"saliency-rl {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo",
        help="run the pipeline end to end on a small default task",
        description="Collect frames, oracle-annotate some and preview their saliency maps.",
    )
    demo.add_argument("--out", help="output directory (default: runs/demo_<time>)")
    demo.add_argument(
        "--env", default="dmc:cartpole-swingup", help="env spec (default: dmc:cartpole-swingup)"
    )
    demo.add_argument("--episodes", type=positive_int, default=2, help="episodes to collect (2)")
    demo.add_argument(
        "--annotate-frames", type=positive_int, default=10, help="frames the oracle annotates (10)"
    )
    demo.add_argument("--seed", type=non_negative_int, default=0, help="random seed (0)")
    demo.set_defaults(handler=cmd_demo)

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
    collect.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_env_options(collect)
    collect.set_defaults(handler=cmd_collect)

    annotate = commands.add_parser(
        "annotate",
        help="annotate frames of a dataset with clicks",
        description="Choose frames of a dataset and store click annotations.",
    )
    annotate.add_argument("dataset", help="dataset directory")
    annotate.add_argument(
        "--oracle",
        action="store_true",
        help="click the simulator's salient points instead of a person",
    )
    annotate.add_argument("--frames", type=positive_int, default=10, help="frames to annotate (10)")
    annotate.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of the frame choice (0)"
    )
    annotate.set_defaults(handler=cmd_annotate)

    info = commands.add_parser(
        "info", help="describe a dataset", description="Print a dataset's spec, size and fields."
    )
    info.add_argument("dataset", help="dataset directory")
    info.set_defaults(handler=cmd_info)

    envs = commands.add_parser(
        "envs",
        help="list environments and presets",
        description="List every task spec and the named presets.",
    )
    envs.add_argument(
        "suite", nargs="?", choices=("dmc", "metaworld", "atari", "fake"), help="only this suite"
    )
    envs.set_defaults(handler=cmd_envs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.handler(args)
    except SaliencyRLError as error:
        print(f"saliency-rl: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - silence Python's own report at exit
        return 0
    except KeyboardInterrupt:
        print(
            "saliency-rl: interrupted; everything finished before the interruption is saved",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
