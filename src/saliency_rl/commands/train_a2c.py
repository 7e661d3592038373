"""``saliency-rl train a2c`` and ``saliency-rl train acktr``: actor-critic on an Atari game with
an optional self-supervised attention mask (algos.a2c, algos.a2c_trainer, algos.kfac).

Both share every option; ACKTR adds the K-FAC ones. Unset options take the preset's value
(a2c: ``wu2021``, acktr: ``acktr``).
"""

from __future__ import annotations

import argparse
import os

ATTENTION_CHOICES = ("none", "joint", "top-down", "frozen", "universal", "transfer")
VECTOR_CHOICES = ("native", "our", "our-async")
# option dest -> A2CConfig field, for the options both algorithms take
COMMON_SETTINGS = {
    "attention": "attention",
    "total_steps": "total_steps",
    "num_envs": "num_envs",
    "num_steps": "num_steps",
    "lr": "learning_rate",
    "gamma": "gamma",
    "entropy_coef": "entropy_coef",
    "value_coef": "value_coef",
    "max_grad_norm": "max_grad_norm",
    "seed": "seed",
    "vector": "vector",
    "eval_every": "eval_every",
    "eval_episodes": "eval_episodes",
    "eval_max_steps": "eval_max_steps",
    "checkpoint_every": "checkpoint_every",
    "log_every": "log_every",
}
ACKTR_SETTINGS = {
    "kfac_momentum": "kfac_momentum",
    "kfac_stat_decay": "kfac_stat_decay",
    "kfac_damping": "kfac_damping",
    "kfac_kl_clip": "kfac_kl_clip",
    "kfac_eigen_every": "kfac_eigen_every",
    "kfac_stats_every": "kfac_stats_every",
    "vf_fisher_coef": "vf_fisher_coef",
    "attention_lr": "attention_lr",
}


def cmd_train(args: argparse.Namespace) -> None:
    import torch

    from saliency_rl.algos.a2c import a2c_config
    from saliency_rl.algos.a2c_trainer import resume_a2c, train_a2c
    from saliency_rl.errors import SaliencyRLError

    algo = args.algorithm
    if args.threads:
        torch.set_num_threads(args.threads)
    names = dict(COMMON_SETTINGS, **(ACKTR_SETTINGS if algo == "acktr" else {}))
    settings = {field: getattr(args, dest) for dest, field in names.items()}
    settings["eval_deterministic"] = True if args.eval_deterministic else None
    progress = not args.no_progress
    if args.resume:
        run_dir = args.out or (os.path.join("runs", args.name) if args.name else None)
        if run_dir is None:
            raise SaliencyRLError("--resume needs the run: give --out RUN_DIR or --name NAME")
        run_dir = resume_a2c(
            run_dir, device=args.device, progress=progress, env_spec=args.env, algo=algo, **settings
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
            attention_checkpoint=args.attention_checkpoint,
            out=args.out,
            name=args.name,
            device=args.device,
            preset=preset,
            progress=progress,
        )
    print(f"run {run_dir}")


def _add_options(parser: argparse.ArgumentParser, algo: str) -> None:
    from saliency_rl.cli import non_negative_int, positive_int

    acktr = algo == "acktr"
    parser.add_argument("--env", help="Atari game spec, e.g. atari:MsPacman")
    parser.add_argument(
        "--attention",
        choices=ATTENTION_CHOICES,
        help="none (default): plain CNN; joint: trained online with the agent; top-down: "
        "trained by the RL loss only; frozen / universal / transfer: a fixed pretrained "
        "module (--attention-checkpoint) trained on this game / several games / other games",
    )
    parser.add_argument(
        "--attention-checkpoint", help="pretrained module (saliency-rl pretrain-attention)"
    )
    default_preset = "acktr" if acktr else "wu2021"
    parser.add_argument("--preset", help=f"hyperparameter preset (default {default_preset})")
    envs, steps = ("32", "20") if acktr else ("16", "5")
    parser.add_argument("--total-steps", type=positive_int, help="agent steps, all envs (10M)")
    parser.add_argument("--num-envs", type=positive_int, help=f"parallel environments ({envs})")
    parser.add_argument(
        "--num-steps", type=positive_int, help=f"steps per env per update ({steps})"
    )
    parser.add_argument(
        "--lr",
        type=float,
        help="K-FAC learning rate (0.25)" if acktr else "RMSprop learning rate (7e-4)",
    )
    parser.add_argument("--gamma", type=float, help="discount (0.99)")
    parser.add_argument("--entropy-coef", type=float, help="entropy bonus weight (0.01)")
    parser.add_argument("--value-coef", type=float, help="value loss weight (0.5)")
    parser.add_argument(
        "--max-grad-norm",
        type=float,
        help="gradient clip norm (0.5)" + ("; ACKTR: the attention module's only" if acktr else ""),
    )
    if acktr:
        group = parser.add_argument_group("K-FAC options")
        group.add_argument("--kfac-momentum", type=float, help="SGD momentum (0.9)")
        group.add_argument(
            "--kfac-stat-decay", type=float, help="factor running-average decay (0.99)"
        )
        group.add_argument("--kfac-damping", type=float, help="damping (0.01)")
        group.add_argument(
            "--kfac-kl-clip", type=float, help="trust region: max KL per update (0.001)"
        )
        group.add_argument(
            "--kfac-eigen-every",
            type=positive_int,
            help="updates between eigen-decompositions (10)",
        )
        group.add_argument(
            "--kfac-stats-every", type=positive_int, help="updates between factor updates (1)"
        )
        group.add_argument(
            "--vf-fisher-coef", type=float, help="value weight in the sampled Fisher loss (1.0)"
        )
        group.add_argument(
            "--attention-lr",
            type=float,
            help="RMSprop lr of the attention module, which K-FAC does not precondition (7e-4)",
        )
    parser.add_argument("--seed", type=non_negative_int, help="random seed (0)")
    parser.add_argument(
        "--vector",
        choices=VECTOR_CHOICES,
        help="vector env: native (ale-py C++, fastest; default), our (exact resume), our-async",
    )
    parser.add_argument(
        "--eval-every", type=non_negative_int, help="agent steps between evaluations (100000)"
    )
    parser.add_argument("--eval-episodes", type=non_negative_int, help="games per evaluation (10)")
    parser.add_argument(
        "--eval-deterministic", action="store_true", help="evaluate the greedy action, not samples"
    )
    parser.add_argument(
        "--eval-max-steps", type=positive_int, help="cut evaluation games after this (27000)"
    )
    parser.add_argument(
        "--checkpoint-every", type=positive_int, help="agent steps between checkpoints (100000)"
    )
    parser.add_argument(
        "--log-every", type=positive_int, help="agent steps between log rows (10000)"
    )
    parser.add_argument("--out", help="run directory (default: runs/<name>)")
    parser.add_argument(
        "--name", help=f"run name (default: <env>__{algo}-<attention>__<seed>__<time>)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out (or runs/<name>) from its checkpoint",
    )
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA if present"
    )
    parser.add_argument("--threads", type=positive_int, help="torch CPU threads (torch's default)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=cmd_train)


def register(commands: argparse._SubParsersAction, train: argparse._SubParsersAction) -> None:
    a2c = train.add_parser(
        "a2c",
        help="A2C on an Atari game, with an attention mask on the CNN features",
        description="A2C (16 envs x 5 steps, RMSprop) on an Atari game; --attention multiplies "
        "the CNN's last 7x7 feature maps by a self-supervised attention mask (Wu, Khetarpal, "
        "Precup, AAAI 2021). Writes runs/<name>/: config.json, metrics.csv, checkpoints/, "
        "eval.json. Unset options take preset wu2021's values.",
    )
    _add_options(a2c, "a2c")
    acktr = train.add_parser(
        "acktr",
        help="ACKTR (K-FAC natural gradient) on an Atari game, with an attention mask",
        description="ACKTR (Wu et al. 2017: 32 envs x 20 steps, K-FAC lr 0.25, KL clip 0.001, "
        "damping 0.01) on an Atari game, with the same --attention modes as train a2c; the "
        "attention module itself is stepped by RMSprop (--attention-lr). Writes the same run "
        "directory as train a2c (config.json algo 'acktr'; metrics.csv adds kl_scale and "
        "kfac_skipped, the count of steps skipped on a failed eigen-decomposition). Unset "
        "options take preset acktr's values.",
    )
    _add_options(acktr, "acktr")
