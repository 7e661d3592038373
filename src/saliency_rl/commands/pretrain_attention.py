"""``saliency-rl pretrain-attention``: the self-supervised attention module, offline on Atari."""

from __future__ import annotations

import argparse

from saliency_rl.commands.args import (
    add_pair_pretraining_options,
    add_run_options,
    run_pair_pretraining,
)


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
    out = run_pair_pretraining(pretrain_attention, config, args, "attention")
    print(f"attention checkpoint {out}")


def register(commands: argparse._SubParsersAction, train: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "pretrain-attention",
        help="pretrain the self-supervised attention module on Atari datasets",
        description="Pretrain the attention module offline on frame pairs of one or more Atari "
        "datasets (saliency-rl collect --env atari:<Game>), for `train a2c --attention frozen "
        "| universal | transfer --attention-checkpoint OUT`.",
    )
    add_pair_pretraining_options(parser, checkpoint_every=1000)
    add_run_options(
        parser,
        out="checkpoint directory (default: runs/<datasets>__attention__<seed>)",
        resume="continue the checkpoint in --out (to --steps; its other settings are kept)",
    )
    parser.set_defaults(handler=cmd_pretrain_attention)
