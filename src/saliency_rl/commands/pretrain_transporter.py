"""``saliency-rl pretrain-transporter``: the Transporter keypoint baseline on Atari frames."""

from __future__ import annotations

import argparse

from saliency_rl.commands.args import (
    add_pair_pretraining_options,
    add_run_options,
    positive_int,
    run_pair_pretraining,
)


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
    tag = f"transporter-k{args.keypoints}"
    out = run_pair_pretraining(pretrain_transporter, config, args, tag)
    print(f"transporter checkpoint {out}")


def _transporter_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keypoints", type=positive_int, default=5, help="K keypoints (5)")
    parser.add_argument(
        "--width", type=positive_int, default=32, help="channels of the first convolutions (32)"
    )


def register(commands: argparse._SubParsersAction, train: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "pretrain-transporter",
        help="train the Transporter keypoint baseline on Atari datasets",
        description="Train Transporter (Kulkarni et al. 2019) on frame pairs of Atari datasets "
        "(saliency-rl collect --env atari:<Game>), the pairs the attention module is "
        "pretrained on; then `saliency-rl keypoints OUT --k K` extracts its K keypoints.",
    )
    add_pair_pretraining_options(parser, checkpoint_every=500, extra=_transporter_options)
    add_run_options(
        parser,
        out="checkpoint directory (default: runs/<datasets>__transporter-k<K>__<seed>)",
        resume="continue the checkpoint in --out (to --steps)",
    )
    parser.set_defaults(handler=cmd_pretrain_transporter)
