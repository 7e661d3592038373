"""``saliency-rl report RUNS... [--out DIR]``: tables, learning curves and figures of runs."""

from __future__ import annotations

import argparse

from saliency_rl.commands.args import add_run_options

HELP = "an HTML page and a Markdown summary of runs: tables, curves, figures"
DESCRIPTION = (
    "Read run directories (or a sweep / demo directory holding runs) and write "
    "OUT/index.html (self-contained, images embedded) and OUT/report.md: results tables in "
    "the papers' layout (rows tasks, columns methods, mean ± std over seeds, best in bold), "
    "learning curves, saliency / reconstruction / attention / keypoint figures found under "
    "each run's figures/, and every run's config and provenance."
)


def run(args: argparse.Namespace) -> None:
    from saliency_rl.experiments.report import write_report

    out = args.out or "report"
    index = write_report(args.runs, out, title=args.title)
    print(f"report {index}  (Markdown: {index.parent / 'report.md'})")


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", help="run directories, or directories holding runs")
    parser.add_argument("--title", default="saliency-rl report", help="page title")
    add_run_options(parser, out="report directory (default: report)", device=None, progress=False)
