"""``saliency-rl envs [SUITE]``: every task spec and the named presets."""

from __future__ import annotations

import argparse

HELP = "list environments and presets"
DESCRIPTION = "List every task spec and the named presets."


def run(args: argparse.Namespace) -> None:
    from saliency_rl.envs import PRESETS, SUITES, task_names

    suites = [args.suite] if args.suite else [s for s in SUITES if s != "fake"]
    for suite in suites:
        names = task_names(suite)
        print(f"{suite} ({len(names)} tasks): " + ", ".join(f"{suite}:{n}" for n in names))
    print("presets:")
    for name, preset in PRESETS.items():
        if not args.suite or preset.suite == args.suite:
            print(f"  {name:18s} {preset.description}")


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "suite", nargs="?", choices=("dmc", "metaworld", "atari", "fake"), help="only this suite"
    )
