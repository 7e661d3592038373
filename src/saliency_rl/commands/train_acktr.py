"""``saliency-rl train acktr``: ACKTR on an Atari game with an optional attention mask; every
option of ``train a2c`` plus K-FAC's (commands.train_a2c holds both).
"""

from __future__ import annotations

import argparse

from saliency_rl.commands.train_a2c import add_algorithm_options
from saliency_rl.commands.train_a2c import run as run

HELP = "ACKTR (K-FAC natural gradient) on an Atari game, with an attention mask"
DESCRIPTION = (
    "ACKTR (Wu et al. 2017: 32 envs x 20 steps, K-FAC lr 0.25, KL clip 0.001, "
    "damping 0.01) on an Atari game, with the same --attention modes as train a2c; the "
    "attention module itself is stepped by RMSprop (--attention-lr). Writes the same run "
    "directory as train a2c (config.json algo 'acktr'; metrics.csv adds kl_scale and "
    "kfac_skipped, the count of steps skipped on a failed eigen-decomposition). Unset "
    "options take preset acktr's values."
)


def add_options(parser: argparse.ArgumentParser) -> None:
    add_algorithm_options(parser, "acktr")
