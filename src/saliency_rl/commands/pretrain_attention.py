"""``saliency-rl pretrain-attention``: the self-supervised attention module, offline on Atari."""

from __future__ import annotations

import argparse
import os

from saliency_rl.commands.args import add_run_options, non_negative_int, positive_int


def cmd_pretrain_attention(args: argparse.Namespace) -> None:
    from saliency_rl.pretrain.attention_pretrain import (
        AttentionPretrainConfig,
        pretrain_attention,
    )

    config = AttentionPretrainConfig(
        batch_size=args.batch_size,
        learning_rate=args.lr,
        max_gap=args.max_gap,
        seed=args.seed,
        log_every=args.log_every,
        checkpoint_every=args.checkpoint_every,
    )
    names = "+".join(os.path.basename(os.path.normpath(d)) for d in args.dataset)
    out = args.out or os.path.join("runs", f"{names}__attention__{args.seed}")
    pretrain_attention(
        args.dataset,
        out,
        args.steps,
        config=config,
        resume=args.resume,
        device=args.device,
        progress=not args.no_progress,
    )
    print(f"attention checkpoint {out}")


def register(commands: argparse._SubParsersAction, train: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "pretrain-attention",
        help="pretrain the self-supervised attention module on Atari datasets",
        description="Pretrain the attention module offline on frame pairs of one or more Atari "
        "datasets (saliency-rl collect --env atari:<Game>), for `train a2c --attention frozen "
        "| universal | transfer --attention-checkpoint OUT`.",
    )
    parser.add_argument("dataset", nargs="+", help="dataset directories (1+ games)")
    parser.add_argument("--steps", type=positive_int, default=10_000, help="steps (10000)")
    parser.add_argument(
        "--batch-size", type=positive_int, default=32, help="frame pairs a step (32)"
    )
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam lr (1e-3)")
    parser.add_argument(
        "--max-gap", type=positive_int, default=59, help="most steps between a pair's frames (59)"
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed (0)")
    parser.add_argument(
        "--log-every", type=positive_int, default=100, help="steps between log rows (100)"
    )
    parser.add_argument(
        "--checkpoint-every", type=positive_int, default=1000, help="steps between saves (1000)"
    )
    add_run_options(
        parser,
        out="checkpoint directory (default: runs/<datasets>__attention__<seed>)",
        resume="continue the checkpoint in --out (to --steps; its other settings are kept)",
    )
    parser.set_defaults(handler=cmd_pretrain_attention)
