"""``saliency-rl <command> [options]``: a thin shell over the library's functions.

Every command maps to one function a notebook user can call directly; errors the library
raises (wrong spec, missing dataset, bad value) end here as one line and exit code 2. The
commands live in ``saliency_rl.commands``, one module each; this file finds them and runs
the one asked for.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from saliency_rl import __version__
from saliency_rl.commands.args import EXIT_BAD_INPUT, Parser
from saliency_rl.errors import SaliencyRLError

EXIT_INTERRUPTED = 130
COMMANDS = (
    "collect", "annotate", "info", "envs", "train_saliency", "label",
    "pretrain", "pretrain_attention", "pretrain_transporter", "features",
    "train_sac", "train_bc", "train_a2c", "evaluate", "keypoints", "report", "sweep", "demo",
)  # fmt: skip
"""The ``saliency_rl.commands`` modules, in the order ``--help`` lists them: the pipeline's."""


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: every command module's parser under ``saliency-rl``."""
    parser = Parser(
        prog="saliency-rl",
        description="Visual reinforcement and imitation learning guided by saliency.",
    )
    parser.add_argument("--version", action="version", version=f"saliency-rl {__version__}")
    parser.set_defaults(parser=parser)  # `sweep` checks its grid's command lines with it
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    algorithms = None
    for name in COMMANDS:
        if name == "train_sac":  # `train` itself, before its first algorithm
            train = commands.add_parser(
                "train",
                help="train a policy: sac (pixels), bc (demos), a2c / acktr (Atari, attention)",
                description="Train a policy; the algorithm is the first argument.",
            )
            algorithms = train.add_subparsers(dest="algorithm", metavar="ALGORITHM", required=True)
        importlib.import_module(f"saliency_rl.commands.{name}").register(commands, algorithms)
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
