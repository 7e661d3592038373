"""``saliency-rl pretrain-attention``: the self-supervised attention module, offline on Atari."""

from __future__ import annotations

import argparse

from saliency_rl.commands.args import (
    add_pair_pretraining_options,
    add_run_options,
    run_pair_pretraining,
)

HELP = "pretrain the self-supervised attention module on Atari datasets"
DESCRIPTION = (
    "Pretrain the attention module offline on frame pairs of one or more Atari "
    "datasets (saliency-rl collect --env atari:<Game>), for `train a2c --attention frozen "
    "| universal | transfer --attention-checkpoint OUT`."
)


def run(args: argparse.Namespace) -> None:
    from saliency_rl.pretrain.attention_pretrain import AttentionPretrainConfig, pretrain_attention

    out = run_pair_pretraining(pretrain_attention, AttentionPretrainConfig, args, "attention")
    print(f"attention checkpoint {out}")


def add_options(parser: argparse.ArgumentParser) -> None:
    from saliency_rl.pretrain.attention_pretrain import AttentionPretrainConfig

    add_pair_pretraining_options(parser, AttentionPretrainConfig)
    add_run_options(
        parser,
        out="checkpoint directory (default: runs/<datasets>__attention__<seed>)",
        resume="continue the checkpoint in --out (to --steps; its other settings are kept)",
    )
