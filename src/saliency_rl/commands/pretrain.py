"""``saliency-rl pretrain``: masked multi-modal pretraining (MultiMAE, or MAE) on a dataset."""

from __future__ import annotations

import argparse
import os

from saliency_rl.commands.args import add_run_options, non_negative_int, positive_int


def cmd_pretrain(args: argparse.Namespace) -> None:
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
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup=args.warmup,
        seed=args.seed,
        device=args.device,
        resume=args.resume,
        progress=not args.no_progress,
        model_size=args.model,
        model_overrides=overrides,
        checkpoint_every=args.checkpoint_every,
    )
    losses = "  ".join(f"{k} {v:.4f}" for k, v in summary.losses.items())
    print(f"pretrained {summary.step} steps ({summary.images_per_second:.1f} images/s): {losses}")
    print(f"encoder checkpoint  {summary.checkpoint}")
    print(f"reconstructions     {summary.reconstruction_png}")


def register(commands: argparse._SubParsersAction, train: argparse._SubParsersAction) -> None:
    pretrain = commands.add_parser(
        "pretrain",
        help="pretrain a MultiMAE (or MAE) encoder on a dataset",
        description="Masked multi-modal pretraining (MultiMAE) on a dataset's frames and "
        "fields; with --modalities rgb it is a plain MAE. Writes checkpoints, metrics.csv and "
        "reconstruction PNGs into --out; the newest checkpoint is the encoder for policies.",
    )
    pretrain.add_argument("dataset", help="dataset directory")
    pretrain.add_argument(
        "--modalities",
        default="rgb,saliency",
        help="comma-separated modalities: rgb, saliency, depth, normals (rgb,saliency); "
        "saliency needs `saliency-rl label` first, depth and normals a depth field",
    )
    pretrain.add_argument("--steps", type=positive_int, default=10_000, help="steps (10000)")
    pretrain.add_argument("--batch-size", type=positive_int, default=64, help="frames a step (64)")
    pretrain.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (1e-4)")
    pretrain.add_argument(
        "--warmup", type=non_negative_int, help="linear warm-up steps (5%% of --steps)"
    )
    pretrain.add_argument("--seed", type=non_negative_int, default=0, help="random seed (0)")
    pretrain.add_argument(
        "--model", choices=("visarl", "tiny"), default="visarl",
        help="model size: visarl (depth 4, width 256, 4 heads) or tiny (smoke tests)",
    )  # fmt: skip
    pretrain.add_argument(
        "--patch-size", type=positive_int, help="patch side in pixels (8; must divide the frame)"
    )
    pretrain.add_argument("--mask-ratio", type=float, help="share of tokens masked (0.75)")
    pretrain.add_argument(
        "--norm-pix-loss", action="store_true", help="reconstruct per-patch normalised RGB (MAE)"
    )
    pretrain.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=1000,
        help="steps between checkpoints (1000)",
    )
    add_run_options(
        pretrain,
        out="run directory (default: runs/<dataset>__multimae-<modalities>__<seed>)",
        resume="continue the run in --out from its newest checkpoint (starts fresh if none)",
    )
    pretrain.set_defaults(handler=cmd_pretrain)
