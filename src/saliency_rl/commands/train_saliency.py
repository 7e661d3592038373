"""``saliency-rl train-saliency``: fit a saliency predictor on a dataset's annotated frames."""

from __future__ import annotations

import argparse
import os

from saliency_rl.commands.args import (
    add_choice,
    add_run_options,
    fraction,
    given,
    non_negative_int,
    positive_int,
)

HELP = "fit a saliency predictor on a dataset's annotated frames"
DESCRIPTION = (
    "Train a saliency predictor (small U-Net or PiCANet-style) on the annotated "
    "frames of a dataset, holding some out; writes a checkpoint (config.json, "
    "model.safetensors), report.json (max F-beta, MAE on the held-out frames) and preview.png."
)


def run(args: argparse.Namespace) -> None:
    from saliency_rl.saliency.augment import AugmentConfig
    from saliency_rl.saliency.fit import fit_predictor

    out = args.out or os.path.join(args.dataset, "predictors", args.model)
    augment = {}
    if args.background_augment is not None:
        augment["augment"] = AugmentConfig(background=args.background_augment)
    report = fit_predictor(
        args.dataset,
        out,
        **given(
            args,
            "progress",
            "model",
            "size",
            "steps",
            "batch_size",
            "lr",
            "holdout",
            "seed",
            "device",
            "precision",
        ),
        **augment,
    )
    held = report["holdout_metrics"]
    print(
        f"trained {args.model} on {len(report['train_frames'])} frames in "
        f"{report['train_seconds']:.0f} s; checkpoint {out}"
    )
    if held and held.get("max_f_beta") is not None:
        print(
            f"held-out {len(report['holdout_frames'])} frames: max F-beta "
            f"{held['max_f_beta']:.3f}  MAE {held['mae']:.4f}"
        )
    else:
        print("no held-out frames with salient points: no F-beta (see report.json)")
    print(f"background replacement: {report['background_replacement']}")
    print(f"report {os.path.join(out, 'report.json')}  preview {os.path.join(out, 'preview.png')}")


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="dataset directory with annotations")
    add_choice(
        parser,
        "--model",
        ("unet", "picanet"),
        "unet: small U-Net, fast (default); picanet: PiCANet-style with attention",
    )
    add_choice(parser, "--size", ("small", "tiny"), "network size (small)")
    parser.add_argument(
        "--steps", type=positive_int, help="optimiser steps (unet 1500, picanet 1000)"
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=16, help="augmented frames a step (16)"
    )
    parser.add_argument("--lr", type=float, default=3e-4, help="AdamW peak lr (3e-4)")
    holdout = "fraction of annotated frames held out for the report (0.2; 0 trains on all)"
    parser.add_argument("--holdout", type=fraction, default=0.2, help=holdout)
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed (0)")
    parser.add_argument(
        "--background-augment",
        type=fraction,
        metavar="P",
        help="share of training samples whose background (sky, floor: the dataset's background "
        "masks) is replaced by random textures, for robustness to visual distractors "
        "(0.5; 0 switches it off)",
    )
    add_choice(
        parser,
        "--precision",
        ("fp32", "bf16", "auto"),
        "fp32 (default); bf16: the network under bf16 autocast; auto: time both on the first "
        "batch and keep the faster (recorded in report.json)",
    )
    add_run_options(
        parser, out="checkpoint directory (default: DATASET/predictors/<model>)", threads=True
    )
