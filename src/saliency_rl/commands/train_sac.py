"""``saliency-rl train sac``: SAC from pixels with a saliency-aware encoder, RAD, DrQ or CURL."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from saliency_rl.commands.args import (
    add_dataclass_options,
    add_env_options,
    add_run_options,
    env_options,
    given,
    int_types,
    run_to_resume,
)
from saliency_rl.errors import SaliencyRLError

# SACConfig fields that are options of their own, in --help's order.
TRAINING_FIELDS = (
    "total_steps", "init_steps", "updates_per_step", "update_every", "batch_size",
    "replay_size", "discount", "nstep", "actor_lr", "critic_lr", "alpha_lr",
    "init_temperature", "critic_tau", "encoder_tau", "target_encoder", "feature_dim",
    "hidden_dim", "hidden_layers", "conv_layers", "conv_filters", "shift_pad", "shift_pad_at",
    "target_augs", "q_augs", "precision",
)  # fmt: skip
SCHEDULE_FIELDS = ("seed", "eval_every", "eval_episodes", "checkpoint_every", "log_every")
SETTINGS = ("encoder", "saliency_mode", "aux", *TRAINING_FIELDS, *SCHEDULE_FIELDS)
"""Every SACConfig field the command sets; None (option left out): the preset's value."""
POSITIVE = (
    "total_steps", "updates_per_step", "update_every", "batch_size", "replay_size", "nstep",
    "feature_dim", "hidden_dim", "conv_layers", "conv_filters", "target_augs", "q_augs",
    "checkpoint_every", "log_every",
)  # fmt: skip
NON_NEGATIVE = (
    "init_steps", "hidden_layers", "shift_pad", "shift_pad_at", "seed", "eval_every",
    "eval_episodes",
)  # fmt: skip
HELPS = {
    "encoder": "cnn: ViSaRL's 11-layer CNN trained by the critic; multimae: frozen MultiMAE "
    "features (--encoder-checkpoint), computed once per step",
    "saliency_mode": "cnn: rgb, saliency (map alone), rgb_x_saliency (frames masked by the "
    "map), rgbs (map as 4th channel); multimae: rgb, rgb+saliency-pretrain-only, "
    "rgb+saliency. Maps come from --predictor, once per env step",
}
"""Help in the command's words, where SACConfig's docstrings speak of fields."""
INT_TYPES = int_types(POSITIVE, NON_NEGATIVE)

HELP = "SAC from pixels: ViSaRL's CNN with saliency, frozen MultiMAE, RAD, DrQ, CURL"
DESCRIPTION = (
    "SAC from pixels (DrQ-v2-style: the encoder is trained by the critic, the "
    "actor sees detached features, Polyak-averaged target Q networks, learned "
    "temperature). Writes runs/<name>/: config.json, metrics.csv, tb/ (TensorBoard), "
    "checkpoints/latest/, eval.json. Unset options take the --preset's values. "
    "step = agent steps; frames = step x action repeat."
)
PARSER = {"conflict_handler": "resolve"}  # our --preset replaces the env options' --preset


def run(args: argparse.Namespace) -> None:
    from saliency_rl.algos.sac import sac_config
    from saliency_rl.algos.sac_trainer import resume_sac, train_sac
    from saliency_rl.allocator import keep_freed_memory

    keep_freed_memory()  # this process owns the allocator: reuse freed activations
    settings = {name: getattr(args, name) for name in SETTINGS}
    progress = not args.no_progress
    if args.resume:
        run_dir = resume_sac(run_to_resume(args), device=args.device, progress=progress, **settings)
    else:
        if args.env is None:
            raise SaliencyRLError(
                "train sac needs --env SPEC (e.g. dmc:cartpole-swingup or metaworld:reach)"
            )
        if args.saliency_mode is None:
            settings["saliency_mode"] = "rgb"
        options = env_options(args)
        options.pop("preset", None)  # --preset names the SAC preset here
        if args.env_preset is not None:
            options["preset"] = None if args.env_preset == "none" else args.env_preset
        run_dir = train_sac(
            args.env,
            sac_config(args.preset, **settings),
            env_options=options,
            progress=progress,
            **given(args, "predictor", "encoder_checkpoint", "out", "name", "device", "preset"),
            **given(args, "wandb"),
        )
    print(f"run {run_dir}")


def add_options(parser: argparse.ArgumentParser) -> None:
    from saliency_rl.algos.sac import AUX_LOSSES, ENCODERS, SAC_PRESETS, SACConfig
    from saliency_rl.models.frozen_encoder import ENCODER_MODES
    from saliency_rl.models.pixel_cnn import SALIENCY_MODES
    from saliency_rl.precision import PRECISIONS

    def config_options(*fields: str, **choices: Sequence[str]) -> None:
        add_dataclass_options(
            parser,
            SACConfig,
            fields=fields,
            types=INT_TYPES,
            choices=choices,
            helps=HELPS,
            shown=SAC_PRESETS,
        )

    add_env_options(parser)  # first: the --preset below then replaces the env preset's
    parser.add_argument("--env", help="task spec: dmc:<domain>-<task>, metaworld:<task>")
    config_options(
        "encoder",
        "saliency_mode",
        encoder=ENCODERS,
        saliency_mode=sorted(set(SALIENCY_MODES) | set(ENCODER_MODES)),
    )
    parser.add_argument(
        "--predictor", help="saliency predictor checkpoint (saliency-rl train-saliency)"
    )
    parser.add_argument(
        "--encoder-checkpoint",
        help="MultiMAE checkpoint or pretraining run (saliency-rl pretrain), for --encoder multimae",
    )
    config_options("aux", aux=AUX_LOSSES)
    parser.add_argument(
        "--preset",
        choices=tuple(SAC_PRESETS),
        default="visarl",
        help="hyperparameters: visarl (ViSaRL Table VI; env preset visarl-dmc / "
        "visarl-metaworld), rad-curl-100k (RAD/CURL DMC 100k benchmark; env preset "
        "dmc-100k) or drq (DrQ on the DMC 100k benchmark: 4-layer CNN, batch 512, K = M = 2; "
        "env preset dmc-100k)",
    )
    parser.add_argument(
        "--env-preset",
        help="env preset instead of the one --preset implies (none: make_env's defaults)",
    )
    config_options(*TRAINING_FIELDS, precision=PRECISIONS)
    config_options(*SCHEDULE_FIELDS)
    add_run_options(
        parser,
        out="run directory (default: runs/<name>)",
        name="run name (default: <env>__<method>__<seed>__<time>)",
        resume="continue the run in --out (or runs/<name>) from its checkpoint; only "
        "--total-steps, --eval-*, --checkpoint-every, --log-every may change",
        threads=True,
    )
    parser.add_argument(
        "--wandb", action="store_true", help="also log to Weights & Biases (needs wandb)"
    )
