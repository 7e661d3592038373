"""``saliency-rl pretrain-transporter``: the Transporter keypoint baseline on Atari frames."""

from __future__ import annotations

import argparse

from saliency_rl.commands.args import (
    add_pair_pretraining_options,
    add_run_options,
    run_pair_pretraining,
)

HELP = "train the Transporter keypoint baseline on Atari datasets"
DESCRIPTION = (
    "Train Transporter (Kulkarni et al. 2019) on frame pairs of Atari datasets "
    "(saliency-rl collect --env atari:<Game>), the pairs the attention module is "
    "pretrained on; then `saliency-rl keypoints OUT --k K` extracts its K keypoints."
)


def run(args: argparse.Namespace) -> None:
    from saliency_rl.pretrain.transporter_pretrain import (
        TransporterPretrainConfig,
        pretrain_transporter,
    )

    out = run_pair_pretraining(
        pretrain_transporter, TransporterPretrainConfig, args, f"transporter-k{args.num_keypoints}"
    )
    print(f"transporter checkpoint {out}")


def add_options(parser: argparse.ArgumentParser) -> None:
    from saliency_rl.pretrain.transporter_pretrain import TransporterPretrainConfig

    add_pair_pretraining_options(
        parser, TransporterPretrainConfig, flags={"num_keypoints": "--keypoints"}
    )
    add_run_options(
        parser,
        out="checkpoint directory (default: runs/<datasets>__transporter-k<K>__<seed>)",
        resume="continue the checkpoint in --out (to --steps)",
    )
