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
    "collect", "annotate", "info", "envs", "train-saliency", "label",
    "pretrain", "pretrain-attention", "pretrain-transporter", "features", "probe",
    "train sac", "train bc", "train a2c", "train acktr",
    "evaluate", "keypoints", "report", "sweep", "demo",
)  # fmt: skip
"""Every command, in the order ``--help`` lists them (the pipeline's). ``train sac`` lives in
``saliency_rl.commands.train_sac``, ``pretrain-attention`` in ``commands.pretrain_attention``.

A command module holds ``HELP`` (its line in ``--help``), ``DESCRIPTION``, ``add_options(parser)``
and ``run(args)``, and may hold ``PARSER`` (more ``add_parser`` keywords). Its options are added
when its parser is first used, so that ``saliency-rl --help`` imports none of them (some read
config classes off modules that import torch).
"""
TRAIN_HELP = "train a policy: sac (pixels), bc (demos), a2c / acktr (Atari, attention)"


def command_module(command: str) -> str:
    """The module of a command: ``train sac`` -> ``saliency_rl.commands.train_sac``."""
    return "saliency_rl.commands." + command.replace(" ", "_").replace("-", "_")


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
    for command in COMMANDS:
        module = importlib.import_module(command_module(command))
        group, _, name = command.rpartition(" ")
        if group == "train" and algorithms is None:  # `train` itself, before its first algorithm
            train = commands.add_parser(
                "train",
                help=TRAIN_HELP,
                description="Train a policy; the algorithm is the first argument.",
            )
            algorithms = train.add_subparsers(dest="algorithm", metavar="ALGORITHM", required=True)
        subparsers = algorithms if group == "train" else commands
        command_parser = subparsers.add_parser(
            name,
            help=module.HELP,
            description=module.DESCRIPTION,
            **getattr(module, "PARSER", {}),
        )
        command_parser.add_options_later(module.add_options)
        command_parser.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "threads", None):  # --threads of add_run_options
            import torch

            torch.set_num_threads(args.threads)
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
