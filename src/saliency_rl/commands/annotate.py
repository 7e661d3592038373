"""``saliency-rl annotate``: click annotations on a dataset's frames, by a person or the oracle."""

from __future__ import annotations

import argparse

from saliency_rl.commands.args import (
    add_dataclass_options,
    given,
    int_types,
    non_negative_int,
    positive_int,
)
from saliency_rl.errors import SaliencyRLError

HELP = "annotate frames of a dataset with clicks"
REFIT_FLAGS = {"every": "--refit-every", "steps": "--refit-steps"}
REFIT_FIELDS = tuple(REFIT_FLAGS)
PAGE_ONLY = {"--predictor": "predictor", **{flag: name for name, flag in REFIT_FLAGS.items()}}
DESCRIPTION = (
    "Choose frames of a dataset and store click annotations: serve a web page "
    "to click on (until Ctrl-C; every click is saved at once), or let the oracle click."
)


def run(args: argparse.Namespace) -> None:
    from saliency_rl.data.dataset import Dataset
    from saliency_rl.saliency.annotations import annotate_with_oracle

    if args.oracle_overwrite and not args.oracle:
        raise SaliencyRLError("--oracle-overwrite is only used with --oracle")
    page_only = [flag for flag, value in PAGE_ONLY.items() if getattr(args, value) is not None]
    if args.oracle and page_only:
        raise SaliencyRLError(f"{page_only[0]} is only used by the web page, not with --oracle")
    if not args.oracle:
        from saliency_rl.saliency.live_predictor import RefitConfig
        from saliency_rl.saliency.web import serve_annotation

        refit = RefitConfig(
            **{
                name: getattr(args, name)
                for name in REFIT_FIELDS
                if getattr(args, name) is not None
            }
        )
        done = serve_annotation(
            args.dataset,
            args.frames,
            refit=refit,
            **given(args, "seed", "host", "port", "annotator", "suggest", "predictor"),
        )
        print(
            f"stopped: {done}/{args.frames} frames annotated; clicks in {args.dataset}/annotations"
        )
        return
    dataset = Dataset.open(args.dataset)
    report = annotate_with_oracle(
        dataset,
        args.frames,
        seed=args.seed,
        overwrite_people=args.oracle_overwrite,
        suggest=args.suggest,
    )
    notes = []
    if report.unchanged:
        notes.append(f"{len(report.unchanged)} already held these clicks and were not rewritten")
    if report.kept:
        notes.append(
            f"kept {len(report.kept)} frames a person annotated (--oracle-overwrite replaces them)"
        )
    if report.replaced:
        notes.append(f"replaced a person's clicks on {len(report.replaced)} frames")
    print(
        f"oracle annotated {len(report.written) + len(report.replaced)} of "
        f"{len(report.frames)} frames of {dataset.root}"
        + "".join(f"; {note}" for note in notes)
        + f"; clicks in {dataset.root / 'annotations'}"
    )


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="dataset directory")
    parser.add_argument(
        "--oracle",
        action="store_true",
        help="click the simulator's salient points instead of a person; frames a person "
        "annotated are kept as they are",
    )
    parser.add_argument(
        "--oracle-overwrite",
        action="store_true",
        help="with --oracle: replace a person's clicks on the selected frames with the "
        "oracle's (a person's work is lost)",
    )
    parser.add_argument("--frames", type=positive_int, default=10, help="frames to annotate (10)")
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of the frame choice (0)"
    )
    parser.add_argument(
        "--port", type=non_negative_int, default=8765, help="web page port (8765; 0: any free one)"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this machine only)"
    )
    parser.add_argument("--annotator", help="name stored with the clicks (your login name)")
    parser.add_argument(
        "--suggest",
        action="store_true",
        help="choose new frames by coverage of the dataset (greedy k-center on 8x8 thumbnails: "
        "each next frame the one least like those chosen) instead of evenly spread ones; "
        "once the page has a predictor, the frames it is least sure about (mean entropy of "
        "its map) come first",
    )
    parser.add_argument(
        "--predictor",
        metavar="CKPT",
        help="web page: show this saliency predictor's map on each frame, to accept as clicks "
        "and correct (a train-saliency checkpoint); without it, the one an earlier session "
        "refitted (DATASET/predictors/live), if any",
    )
    from saliency_rl.saliency.live_predictor import RefitConfig

    add_dataclass_options(
        parser,
        RefitConfig,
        fields=REFIT_FIELDS,
        flags=REFIT_FLAGS,
        types=int_types(positive=["steps"], non_negative=["every"]),
        helps={
            "every": "web page: refit a small U-Net on all annotated frames in the background "
            "after every N newly annotated frames, into DATASET/predictors/live, and show its "
            "maps; 0: never",
            "steps": "web page: optimiser steps of each refit (the small U-Net takes about 0.1 s a "
            "step on 64x64 frames on two busy CPU cores)",
        },
    )
