"""``saliency-rl label``: a trained predictor's saliency map for every frame of a dataset."""

from __future__ import annotations

import argparse

from saliency_rl.commands.args import add_run_options, given, positive_int
from saliency_rl.errors import SaliencyRLError

HELP = "add a predicted saliency map to every frame of a dataset"
DESCRIPTION = (
    "Pseudo-label every frame with a trained predictor (train-saliency): adds the "
    "`saliency` field, one file per episode, never touching the frames. Every episode is "
    "checked to open first, and the labels appear (and meta.json declares them) only once "
    "every episode has one, so a failure leaves the dataset as it was. Resumable: episodes "
    "already labelled by the same predictor are skipped. With --attention the maps come from "
    "a self-supervised attention module pretrained on the dataset's own frame pairs "
    "(pretrain-attention): saliency with no clicks at all."
)


def run(args: argparse.Namespace) -> None:
    from saliency_rl.saliency.label import label_dataset

    source = None
    if args.attention:
        from saliency_rl.models.attention_saliency import AttentionSaliency, load_saliency_source

        source = load_saliency_source(args.attention, args.device, args.batch_size)
        if not isinstance(source, AttentionSaliency):
            raise SaliencyRLError(
                f"{args.attention} is a saliency predictor, not an attention module: give it "
                "as --predictor"
            )
    summary = label_dataset(
        args.dataset,
        args.attention or args.predictor,
        source=source,
        **given(args, "progress", "batch_size", "device", "overwrite"),
    )
    speed = summary["frames_per_second"]
    print(
        f"labelled {summary['frames_labelled']} frames in {summary['episodes_labelled']} episodes"
        + (f" ({speed:.0f} frames/s)" if speed else "")
        + f"; skipped {summary['episodes_skipped']} episodes already labelled by this predictor"
    )


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="dataset directory")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictor", help="predictor checkpoint directory (train-saliency --out)")
    source.add_argument(
        "--attention",
        help="attention module checkpoint (pretrain-attention --out): maps with no clicks",
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=64, help="frames a forward pass (64)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace labels written by another predictor"
    )
    add_run_options(parser, threads=True)
