"""``saliency-rl train a2c`` and ``saliency-rl train acktr``: actor-critic on an Atari game with
an optional self-supervised attention mask (algos.a2c, algos.a2c_trainer, algos.kfac).

Both share every option; ACKTR adds the K-FAC ones. Unset options take the preset's value
(a2c: ``wu2021``, acktr: ``acktr``).
"""

from __future__ import annotations

import argparse

from saliency_rl.commands.args import (
    Options,
    add_dataclass_options,
    add_run_options,
    given,
    int_types,
    run_to_resume,
)

# A2CConfig fields that are options, in --help's order: both algorithms' ...
TRAINING_FIELDS = (
    "total_steps", "num_envs", "num_steps", "learning_rate", "gamma", "entropy_coef",
    "value_coef", "max_grad_norm",
)  # fmt: skip
SCHEDULE_FIELDS = (
    "seed", "vector", "eval_every", "eval_episodes", "eval_deterministic", "eval_max_steps",
    "checkpoint_every", "log_every",
)  # fmt: skip
# ... and ACKTR's own.
ACKTR_FIELDS = (
    "kfac_momentum", "kfac_stat_decay", "kfac_damping", "kfac_kl_clip", "kfac_eigen_every",
    "kfac_stats_every", "vf_fisher_coef", "attention_lr",
)  # fmt: skip
# ... A2C's own (ACKTR steps the attention module with RMSprop, --attention-lr).
A2C_FIELDS = ("attention_update", "attention_adam_lr", "attention_warmup", "precision")
POSITIVE = (
    "total_steps", "num_envs", "num_steps", "kfac_eigen_every", "kfac_stats_every",
    "eval_max_steps", "checkpoint_every", "log_every",
)  # fmt: skip
NON_NEGATIVE = ("seed", "eval_every", "eval_episodes", "attention_warmup")
INT_TYPES = int_types(POSITIVE, NON_NEGATIVE)
HELPS = {
    "attention": "none: plain CNN; joint: trained online with the agent; top-down: trained by "
    "the RL loss only; frozen / universal / transfer: a fixed pretrained module "
    "(--attention-checkpoint) trained on this game / several games / other games",
    "vector": "vector env: native (ale-py C++, fastest), our (exact resume), our-async",
}
"""Help in the command's words, where A2CConfig's docstrings point at module constants."""

HELP = "A2C on an Atari game, with an attention mask on the CNN features"
DESCRIPTION = (
    "A2C (16 envs x 5 steps, RMSprop) on an Atari game; --attention multiplies "
    "the CNN's last 7x7 feature maps by a self-supervised attention mask (Wu, Khetarpal, "
    "Precup, AAAI 2021). Writes runs/<name>/: config.json, metrics.csv, checkpoints/, "
    "eval.json. Unset options take preset wu2021's values."
)


def run(args: argparse.Namespace) -> None:
    from saliency_rl.algos.a2c import a2c_config
    from saliency_rl.algos.a2c_trainer import resume_a2c, train_a2c
    from saliency_rl.errors import SaliencyRLError

    algo = args.algorithm
    fields = ("attention", *TRAINING_FIELDS, *SCHEDULE_FIELDS)
    fields += ACKTR_FIELDS if algo == "acktr" else A2C_FIELDS
    settings = {name: getattr(args, name) for name in fields}  # None: the preset's
    progress = not args.no_progress
    if args.resume:
        run_dir = resume_a2c(
            run_to_resume(args),
            device=args.device,
            progress=progress,
            env_spec=args.env,
            algo=algo,
            **settings,
        )
    else:
        if args.env is None:
            raise SaliencyRLError(f"train {algo} needs --env atari:<Game> (e.g. atari:MsPacman)")
        preset = args.preset or ("acktr" if algo == "acktr" else "wu2021")
        config = a2c_config(preset, **settings)
        if config.algo != algo:
            raise SaliencyRLError(
                f"preset {preset!r} is an {config.algo.upper()} preset; `train {algo}` takes "
                f"{'acktr' if algo == 'acktr' else 'wu2021'}"
            )
        run_dir = train_a2c(
            args.env,
            config,
            preset=preset,
            progress=progress,
            **given(args, "attention_checkpoint", "out", "name", "device"),
        )
    print(f"run {run_dir}")


def add_algorithm_options(parser: argparse.ArgumentParser, algo: str) -> None:
    """train a2c's and train acktr's options (acktr adds the K-FAC ones)."""
    from saliency_rl.algos.a2c import (
        A2C_PRESETS,
        ATTENTION_MODES,
        ATTENTION_UPDATES,
        PRESET_OF_ALGO,
        A2CConfig,
    )
    from saliency_rl.envs.atari_vector import VECTOR_BACKENDS
    from saliency_rl.precision import PRECISIONS

    preset = PRESET_OF_ALGO[algo]

    def config_options(options: Options, *fields: str) -> None:
        add_dataclass_options(
            options,
            A2CConfig,
            fields=fields,
            flags={"learning_rate": "--lr"},
            types=INT_TYPES,
            choices={
                "attention": ATTENTION_MODES,
                "vector": VECTOR_BACKENDS,
                "attention_update": ATTENTION_UPDATES,
                "precision": PRECISIONS,
            },
            helps=HELPS,
            shown={preset: A2C_PRESETS[preset]},
        )

    parser.add_argument("--env", help="Atari game spec, e.g. atari:MsPacman")
    config_options(parser, "attention")
    parser.add_argument(
        "--attention-checkpoint", help="pretrained module (saliency-rl pretrain-attention)"
    )
    parser.add_argument("--preset", help=f"hyperparameter preset (default {preset})")
    config_options(parser, *TRAINING_FIELDS)
    if algo == "a2c":  # ACKTR steps the module with its own RMSprop (--attention-lr)
        config_options(parser, *A2C_FIELDS)
    if algo == "acktr":
        config_options(parser.add_argument_group("K-FAC options"), *ACKTR_FIELDS)
    config_options(parser, *SCHEDULE_FIELDS)
    add_run_options(
        parser,
        out="run directory (default: runs/<name>)",
        name=f"run name (default: <env>__{algo}-<attention>__<seed>__<time>)",
        resume="continue the run in --out (or runs/<name>) from its checkpoint",
        threads=True,
    )


def add_options(parser: argparse.ArgumentParser) -> None:
    add_algorithm_options(parser, "a2c")
