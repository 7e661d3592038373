"""``saliency-rl pretrain-transporter``: the Transporter keypoint baseline on Atari frames."""

from __future__ import annotations

import argparse
import os

from saliency_rl.commands.args import add_run_options, non_negative_int, positive_int


def cmd_pretrain_transporter(args: argparse.Namespace) -> None:
    from saliency_rl.pretrain.transporter_pretrain import (
        TransporterPretrainConfig,
        pretrain_transporter,
    )

    config = TransporterPretrainConfig(
        num_keypoints=args.keypoints,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        max_gap=args.max_gap,
        width=args.width,
        seed=args.seed,
        log_every=args.log_every,
        checkpoint_every=args.checkpoint_every,
    )
    names = "+".join(os.path.basename(os.path.normpath(d)) for d in args.dataset)
    out = args.out or os.path.join("runs", f"{names}__transporter-k{args.keypoints}__{args.seed}")
    pretrain_transporter(
        args.dataset,
        out,
        args.steps,
        config=config,
        resume=args.resume,
        device=args.device,
        progress=not args.no_progress,
    )
    print(f"transporter checkpoint {out}")


def register(commands: argparse._SubParsersAction, train: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "pretrain-transporter",
        help="train the Transporter keypoint baseline on Atari datasets",
        description="Train Transporter (Kulkarni et al. 2019) on frame pairs of Atari datasets "
        "(saliency-rl collect --env atari:<Game>), the pairs the attention module is "
        "pretrained on; then `saliency-rl keypoints OUT --k K` extracts its K keypoints.",
    )
    parser.add_argument("dataset", nargs="+", help="dataset directories (1+ games)")
    parser.add_argument("--keypoints", type=positive_int, default=5, help="K keypoints (5)")
    parser.add_argument("--steps", type=positive_int, default=10_000, help="steps (10000)")
    parser.add_argument(
        "--batch-size", type=positive_int, default=32, help="frame pairs a step (32)"
    )
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam lr (1e-3)")
    parser.add_argument(
        "--max-gap", type=positive_int, default=59, help="most steps between a pair's frames (59)"
    )
    parser.add_argument(
        "--width", type=positive_int, default=32, help="channels of the first convolutions (32)"
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed (0)")
    parser.add_argument(
        "--log-every", type=positive_int, default=100, help="steps between log rows (100)"
    )
    parser.add_argument(
        "--checkpoint-every", type=positive_int, default=500, help="steps between saves (500)"
    )
    add_run_options(
        parser,
        out="checkpoint directory (default: runs/<datasets>__transporter-k<K>__<seed>)",
        resume="continue the checkpoint in --out (to --steps)",
    )
    parser.set_defaults(handler=cmd_pretrain_transporter)
