"""``saliency-rl pretrain``: masked multi-modal pretraining (MultiMAE, or MAE) on a dataset."""

from __future__ import annotations

import argparse
import os

from saliency_rl.commands.args import (
    add_choice,
    add_run_options,
    given,
    non_negative_int,
    positive_int,
)

HELP = "pretrain a MultiMAE (or MAE) encoder on a dataset"
DESCRIPTION = (
    "Masked multi-modal pretraining (MultiMAE) on a dataset's frames and "
    "fields; with --modalities rgb it is a plain MAE. Writes checkpoints, metrics.csv and "
    "reconstruction PNGs into --out; the newest checkpoint is the encoder for policies."
)


def run(args: argparse.Namespace) -> None:
    from saliency_rl.pretrain.multimae_pretrain import pretrain_multimae

    modalities = tuple(m.strip() for m in args.modalities.split(",") if m.strip())
    overrides = {}
    if args.mask_ratio is not None:
        overrides["mask_ratio"] = args.mask_ratio
    if args.patch_size is not None:
        overrides["patch_size"] = args.patch_size
    if args.norm_pix_loss:
        overrides["norm_pix_loss"] = True
    out = args.out or os.path.join(
        "runs", f"{os.path.basename(os.path.normpath(args.dataset))}__multimae-"
        f"{'-'.join(modalities)}__{args.seed}"
    )  # fmt: skip
    summary = pretrain_multimae(
        args.dataset,
        out,
        modalities=modalities,
        model_size=args.model,
        model_overrides=overrides,
        **given(
            args, "progress", "steps", "batch_size", "lr", "warmup", "seed", "device", "resume"
        ),
        **given(args, "checkpoint_every", "precision"),
    )
    losses = "  ".join(f"{k} {v:.4f}" for k, v in summary.losses.items())
    print(f"pretrained {summary.step} steps ({summary.images_per_second:.1f} images/s): {losses}")
    print(f"encoder checkpoint  {summary.checkpoint}")
    print(f"reconstructions     {summary.reconstruction_png}")


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="dataset directory")
    parser.add_argument(
        "--modalities",
        default="rgb,saliency",
        help="comma-separated modalities: rgb, saliency, depth, normals (rgb,saliency); "
        "saliency needs `saliency-rl label` first, depth and normals a depth field",
    )
    parser.add_argument("--steps", type=positive_int, default=10_000, help="steps (10000)")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="frames a step (64)")
    parser.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (1e-4)")
    parser.add_argument(
        "--warmup", type=non_negative_int, help="linear warm-up steps (5%% of --steps)"
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed (0)")
    add_choice(
        parser,
        "--model",
        ("visarl", "tiny"),
        "model size: visarl (depth 4, width 256, 4 heads) or tiny (smoke tests)",
    )
    parser.add_argument(
        "--patch-size", type=positive_int, help="patch side in pixels (8; must divide the frame)"
    )
    parser.add_argument("--mask-ratio", type=float, help="share of tokens masked (0.75)")
    parser.add_argument(
        "--norm-pix-loss", action="store_true", help="reconstruct per-patch normalised RGB (MAE)"
    )
    parser.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=1000,
        help="steps between checkpoints (1000)",
    )
    add_choice(
        parser,
        "--precision",
        ("fp32", "bf16", "auto"),
        "fp32 (default); bf16: the model under bf16 autocast; auto: time both on the first "
        "batch and keep the faster (recorded in each checkpoint's config.json)",
    )
    add_run_options(
        parser,
        out="run directory (default: runs/<dataset>__multimae-<modalities>__<seed>)",
        resume="continue the run in --out from its newest checkpoint (starts fresh if none)",
    )
