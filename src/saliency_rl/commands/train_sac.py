"""``saliency-rl train sac``: SAC from pixels with a saliency-aware encoder, RAD, DrQ or CURL."""

from __future__ import annotations

import argparse
import os

from saliency_rl.errors import SaliencyRLError

CNN_MODES = ("rgb", "saliency", "rgb_x_saliency", "rgbs")
MULTIMAE_MODES = ("rgb", "rgb+saliency-pretrain-only", "rgb+saliency")
SAC_PRESET_NAMES = ("visarl", "rad-curl-100k", "drq")


def cmd_train_sac(args: argparse.Namespace) -> None:
    import torch

    from saliency_rl.algos.sac import sac_config
    from saliency_rl.algos.sac_trainer import resume_sac, train_sac
    from saliency_rl.allocator import keep_freed_memory
    from saliency_rl.cli import env_options

    keep_freed_memory()  # this process owns the allocator: reuse freed activations
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = {
        "encoder": args.encoder,
        "saliency_mode": args.saliency_mode,
        "aux": args.aux,
        "total_steps": args.total_steps,
        "init_steps": args.init_steps,
        "updates_per_step": args.updates_per_step,
        "update_every": args.update_every,
        "batch_size": args.batch_size,
        "replay_size": args.replay_size,
        "discount": args.discount,
        "nstep": args.nstep,
        "actor_lr": args.actor_lr,
        "critic_lr": args.critic_lr,
        "alpha_lr": args.alpha_lr,
        "init_temperature": args.init_temperature,
        "critic_tau": args.critic_tau,
        "encoder_tau": args.encoder_tau,
        "target_encoder": args.target_encoder,
        "feature_dim": args.feature_dim,
        "hidden_dim": args.hidden_dim,
        "hidden_layers": args.hidden_layers,
        "conv_layers": args.conv_layers,
        "conv_filters": args.conv_filters,
        "shift_pad": args.shift_pad,
        "shift_pad_at": args.shift_pad_at,
        "target_augs": args.target_augs,
        "q_augs": args.q_augs,
        "precision": args.precision,
        "seed": args.seed,
        "eval_every": args.eval_every,
        "eval_episodes": args.eval_episodes,
        "checkpoint_every": args.checkpoint_every,
        "log_every": args.log_every,
    }
    progress = not args.no_progress
    if args.resume:
        run_dir = args.out or (os.path.join("runs", args.name) if args.name else None)
        if run_dir is None:
            raise SaliencyRLError("--resume needs the run: give --out RUN_DIR or --name NAME")
        run_dir = resume_sac(run_dir, device=args.device, progress=progress, **settings)
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
            predictor=args.predictor,
            encoder_checkpoint=args.encoder_checkpoint,
            out=args.out,
            name=args.name,
            device=args.device,
            preset=args.preset,
            progress=progress,
            wandb=args.wandb,
        )
    print(f"run {run_dir}")


def register(commands: argparse._SubParsersAction, train: argparse._SubParsersAction) -> None:
    from saliency_rl.cli import add_env_options, non_negative_int, positive_int

    sac = train.add_parser(
        "sac",
        help="SAC from pixels: ViSaRL's CNN with saliency, frozen MultiMAE, RAD, DrQ, CURL",
        description="SAC from pixels (DrQ-v2-style: the encoder is trained by the critic, the "
        "actor sees detached features, Polyak-averaged target Q networks, learned "
        "temperature). Writes runs/<name>/: config.json, metrics.csv, tb/ (TensorBoard), "
        "checkpoints/latest/, eval.json. Unset options take the --preset's values. "
        "step = agent steps; frames = step x action repeat.",
        conflict_handler="resolve",  # our --preset replaces the env options' --preset
    )
    add_env_options(sac)  # first: the --preset below then replaces the env preset's
    sac.add_argument("--env", help="task spec: dmc:<domain>-<task>, metaworld:<task>")
    sac.add_argument(
        "--encoder",
        choices=("cnn", "multimae"),
        help="cnn (default): ViSaRL's 11-layer CNN trained by the critic; multimae: frozen "
        "MultiMAE features (--encoder-checkpoint), computed once per step",
    )
    sac.add_argument(
        "--saliency-mode",
        choices=sorted(set(CNN_MODES) | set(MULTIMAE_MODES)),
        help="cnn: rgb (default), saliency (map alone), rgb_x_saliency (frames masked by "
        "the map), rgbs (map as 4th channel); multimae: rgb, rgb+saliency-pretrain-only, "
        "rgb+saliency. Maps come from --predictor, once per env step",
    )
    sac.add_argument(
        "--predictor", help="saliency predictor checkpoint (saliency-rl train-saliency)"
    )
    sac.add_argument(
        "--encoder-checkpoint",
        help="MultiMAE checkpoint or pretraining run (saliency-rl pretrain), for --encoder multimae",
    )
    sac.add_argument(
        "--aux",
        choices=("none", "rad", "drq", "curl"),
        help="none (visarl's); rad: random translation of every batch; drq: rad with the Q "
        "target averaged over --target-augs shifts and the Q loss over --q-augs (the drq "
        "preset's); curl: rad + contrastive loss with a momentum key encoder (cnn only)",
    )
    sac.add_argument(
        "--preset",
        choices=SAC_PRESET_NAMES,
        default="visarl",
        help="hyperparameters: visarl (ViSaRL Table VI; env preset visarl-dmc / "
        "visarl-metaworld), rad-curl-100k (RAD/CURL DMC 100k benchmark; env preset "
        "dmc-100k) or drq (DrQ on the DMC 100k benchmark: 4-layer CNN, batch 512, K = M = 2; "
        "env preset dmc-100k)",
    )
    sac.add_argument(
        "--env-preset",
        help="env preset instead of the one --preset implies (none: make_env's defaults)",
    )
    sac.add_argument("--total-steps", type=positive_int, help="agent steps to train (100000)")
    sac.add_argument(
        "--init-steps", type=non_negative_int, help="random-action steps before updates (1000)"
    )
    sac.add_argument(
        "--updates-per-step", type=positive_int, help="gradient updates per update step (1)"
    )
    sac.add_argument(
        "--update-every",
        type=positive_int,
        help="agent steps between update steps (1; DrQ-v2: 2, an update every second step)",
    )
    sac.add_argument("--batch-size", type=positive_int, help="transitions per update (128)")
    sac.add_argument(
        "--replay-size", type=positive_int, help="replay capacity (visarl 1M, rad-curl 100k)"
    )
    sac.add_argument("--discount", type=float, help="discount gamma (0.99)")
    sac.add_argument(
        "--nstep", type=positive_int, help="n-step returns: rewards summed (1; DrQ-v2: 3)"
    )
    sac.add_argument("--actor-lr", type=float, help="actor Adam lr (visarl 1e-4, rad-curl 1e-3)")
    sac.add_argument("--critic-lr", type=float, help="critic + encoder Adam lr (1e-3)")
    sac.add_argument(
        "--alpha-lr", type=float, help="temperature Adam lr (visarl 3e-4, rad-curl 1e-4)"
    )
    sac.add_argument("--init-temperature", type=float, help="initial temperature alpha (0.1)")
    sac.add_argument(
        "--critic-tau", type=float, help="target Q Polyak rate (visarl 0.05, rad-curl 0.01)"
    )
    sac.add_argument("--encoder-tau", type=float, help="CURL key encoder Polyak rate (0.05)")
    sac.add_argument(
        "--target-encoder",
        action=argparse.BooleanOptionalAction,
        help="target Q networks with their own Polyak-averaged encoder (drq: on, as DrQ); "
        "--no-target-encoder: the online encoder's features (DrQ-v2)",
    )
    sac.add_argument("--feature-dim", type=positive_int, help="LayerNorm projection size (100)")
    sac.add_argument("--hidden-dim", type=positive_int, help="hidden width of the heads (1024)")
    sac.add_argument(
        "--hidden-layers", type=non_negative_int, help="hidden layers of each head (3)"
    )
    sac.add_argument("--conv-layers", type=positive_int, help="CNN conv layers (11)")
    sac.add_argument("--conv-filters", type=positive_int, help="CNN filters per layer (32)")
    sac.add_argument(
        "--shift-pad", type=non_negative_int, help="rad/drq/curl: max translation in pixels (4)"
    )
    sac.add_argument(
        "--shift-pad-at",
        type=non_negative_int,
        help="frame side at which --shift-pad holds, scaled at other sides (drq: 84, so 3 at "
        "64 px; 0: the same pixels at every side)",
    )
    sac.add_argument(
        "--target-augs", type=positive_int, help="DrQ's K: shifts averaged in the Q target"
    )
    sac.add_argument("--q-augs", type=positive_int, help="DrQ's M: shifts averaged in the Q loss")
    sac.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        help="fp32 (visarl, rad-curl-100k); bf16 autocast; auto (drq): the faster of the "
        "two, timed on this run's networks at start (bf16 on CUDA where supported); the "
        "choice and timings go into config.json",
    )
    sac.add_argument("--seed", type=non_negative_int, help="random seed (0)")
    sac.add_argument(
        "--eval-every",
        type=non_negative_int,
        help="agent steps between evaluations (10000; 0: at the end only)",
    )
    sac.add_argument(
        "--eval-episodes",
        type=non_negative_int,
        help="deterministic-policy episodes per evaluation (10; 0: none)",
    )
    sac.add_argument(
        "--checkpoint-every",
        type=positive_int,
        help="agent steps between checkpoints, written at the next episode end (10000)",
    )
    sac.add_argument("--log-every", type=positive_int, help="agent steps between log rows (1000)")
    sac.add_argument("--out", help="run directory (default: runs/<name>)")
    sac.add_argument("--name", help="run name (default: <env>__<method>__<seed>__<time>)")
    sac.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out (or runs/<name>) from its checkpoint; only "
        "--total-steps, --eval-*, --checkpoint-every, --log-every may change",
    )
    sac.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA if present"
    )
    sac.add_argument("--threads", type=positive_int, help="torch CPU threads (torch's default)")
    sac.add_argument(
        "--wandb", action="store_true", help="also log to Weights & Biases (needs wandb)"
    )
    sac.add_argument("--no-progress", action="store_true", help="no progress bar")
    sac.set_defaults(handler=cmd_train_sac)
