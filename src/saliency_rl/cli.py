"""``saliency-rl <command> [options]``: a thin shell over the library's functions.

Every command maps to one function a notebook user can call directly; errors the library
raises (wrong spec, missing dataset, bad value) end here as one line and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from saliency_rl import __version__
from saliency_rl.errors import SaliencyRLError

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that names the problem and where help is."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def add_env_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("environment options")
    group.add_argument(
        "--image-size", type=positive_int, help="square frame size in pixels (64; Atari 84)"
    )
    group.add_argument(
        "--frame-stack", type=positive_int, help="frames stacked per observation (1; Atari 4)"
    )
    group.add_argument(
        "--action-repeat", type=positive_int, help="times each action is applied (1)"
    )
    group.add_argument(
        "--episode-length", type=positive_int, help="steps before truncation (the suite's limit)"
    )
    group.add_argument("--camera", help="camera name or index (each suite has a default)")
    group.add_argument(
        "--render-quality",
        choices=("fast", "default"),
        default="fast",
        help="fast offscreen rendering (default) or the suite's own visual settings",
    )
    group.add_argument(
        "--preset", help="named paper setting, e.g. dmc-100k, visarl-metaworld, atari"
    )


def env_options(args: argparse.Namespace) -> dict:
    options = {
        "image_size": args.image_size,
        "frame_stack": args.frame_stack,
        "action_repeat": args.action_repeat,
        "episode_length": args.episode_length,
        "camera": args.camera,
        "render_quality": None if args.render_quality == "fast" else args.render_quality,
        "preset": args.preset,
    }
    return {k: v for k, v in options.items() if v is not None}


# ---------------------------------------------------------------------- commands
def cmd_collect(args: argparse.Namespace) -> None:
    from saliency_rl.data.collect import collect

    dataset = collect(
        args.env,
        args.out,
        episodes=args.episodes,
        frames=args.frames,
        policy=args.policy,
        seed=args.seed,
        env_options=env_options(args),
        depth=args.depth,
        progress=not args.no_progress,
    )
    print(dataset.summary())


def cmd_annotate(args: argparse.Namespace) -> None:
    from saliency_rl.data.dataset import Dataset
    from saliency_rl.saliency.annotations import annotate_with_oracle

    if args.oracle_overwrite and not args.oracle:
        raise SaliencyRLError("--oracle-overwrite is only used with --oracle")
    if not args.oracle:
        from saliency_rl.saliency.web import serve_annotation

        done = serve_annotation(
            args.dataset,
            args.frames,
            seed=args.seed,
            host=args.host,
            port=args.port,
            annotator=args.annotator,
        )
        print(
            f"stopped: {done}/{args.frames} frames annotated; clicks in {args.dataset}/annotations"
        )
        return
    dataset = Dataset.open(args.dataset)
    report = annotate_with_oracle(
        dataset, args.frames, seed=args.seed, overwrite_people=args.oracle_overwrite
    )
    notes = []
    if report.unchanged:
        notes.append(f"{len(report.unchanged)} already held these clicks and were not rewritten")
    if report.kept:
        notes.append(
            f"kept {len(report.kept)} frames a person annotated (--oracle-overwrite replaces them)"
        )
    if report.replaced:
        notes.append(f"replaced a person's clicks on {len(report.replaced)} frames")
    print(
        f"oracle annotated {len(report.written) + len(report.replaced)} of "
        f"{len(report.frames)} frames of {dataset.root}"
        + "".join(f"; {note}" for note in notes)
        + f"; clicks in {dataset.root / 'annotations'}"
    )


def cmd_info(args: argparse.Namespace) -> None:
    from saliency_rl.data.dataset import Dataset
    from saliency_rl.errors import DatasetError
    from saliency_rl.saliency.annotations import AnnotationStore

    dataset = Dataset.open(args.dataset)
    print(dataset.summary())
    for name in dataset.meta["extra_fields"]:
        lacking = dataset.episodes_lacking(name)
        if lacking:  # a labelling still to finish, or episodes collected after it
            print(
                f"field {name} is missing for {len(lacking)} of {dataset.num_episodes} episodes "
                f"(first: {dataset.episode_file(lacking[0])})"
            )
    annotated = AnnotationStore(dataset).annotated()
    print(f"annotated {len(annotated)} frames")
    problems = dataset.check(read=args.check)
    for problem in problems:
        print(f"damaged: {problem}")
    if problems:
        raise DatasetError(
            f"dataset {dataset.root} has {len(problems)} damaged or foreign file(s), listed "
            f"above; the first: {problems[0]}"
        )


def cmd_envs(args: argparse.Namespace) -> None:
    from saliency_rl.envs import PRESETS, SUITES, task_names

    suites = [args.suite] if args.suite else [s for s in SUITES if s != "fake"]
    for suite in suites:
        names = task_names(suite)
        print(f"{suite} ({len(names)} tasks): " + ", ".join(f"{suite}:{n}" for n in names))
    print("presets:")
    for name, preset in PRESETS.items():
        if not args.suite or preset.suite == args.suite:
            print(f"  {name:18s} {preset.description}")


def cmd_pretrain(args: argparse.Namespace) -> None:
    from saliency_rl.pretrain.multimae_pretrain import pretrain_multimae

    modalities = tuple(m.strip() for m in args.modalities.split(",") if m.strip())
    overrides = {}
    if args.mask_ratio is not None:
        overrides["mask_ratio"] = args.mask_ratio
    if args.patch_size is not None:
        overrides["patch_size"] = args.patch_size
    if args.norm_pix_loss:
        overrides["norm_pix_loss"] = True
    out = args.out or os.path.join(
        "runs", f"{os.path.basename(os.path.normpath(args.dataset))}__multimae-"
        f"{'-'.join(modalities)}__{args.seed}"
    )  # fmt: skip
    summary = pretrain_multimae(
        args.dataset,
        out,
        modalities=modalities,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup=args.warmup,
        seed=args.seed,
        device=args.device,
        resume=args.resume,
        progress=not args.no_progress,
        model_size=args.model,
        model_overrides=overrides,
        checkpoint_every=args.checkpoint_every,
    )
    losses = "  ".join(f"{k} {v:.4f}" for k, v in summary.losses.items())
    print(f"pretrained {summary.step} steps ({summary.images_per_second:.1f} images/s): {losses}")
    print(f"encoder checkpoint  {summary.checkpoint}")
    print(f"reconstructions     {summary.reconstruction_png}")


def cmd_features(args: argparse.Namespace) -> None:
    import json

    from saliency_rl.models.frozen_encoder import (
        FeatureObservationWrapper,
        FrozenMultiMAEEncoder,
        cache_dataset_features,
    )

    encoder = FrozenMultiMAEEncoder.load(
        args.encoder, mode=args.mode, predictor=args.predictor, device=args.device
    )
    if args.dataset:
        name = cache_dataset_features(
            args.dataset,
            encoder,
            name=args.name,
            batch_size=args.batch_size,
            overwrite=args.overwrite,
            progress=not args.no_progress,
        )
        print(
            f"features ({encoder.mode}, {encoder.feature_dim} per frame) stored as field {name!r} of {args.dataset}"
        )
        return
    from saliency_rl.envs import make_env
    from saliency_rl.evaluation import run_episodes, summarize

    env = make_env(
        args.env,
        image_size=encoder.image_size[0],
        frame_stack=args.frame_stack,
        action_repeat=args.action_repeat,
        episode_length=args.episode_length,
        seed=args.seed,
    )
    env = FeatureObservationWrapper(env, encoder)
    env.action_space.seed(args.seed)
    results, steps_per_second = run_episodes(
        env, lambda obs: env.action_space.sample(), args.episodes, args.seed, not args.no_progress
    )
    env.close()
    summary = summarize(results)
    summary.pop("per_episode")
    summary.update(
        encoder=str(encoder.checkpoint),
        mode=encoder.mode,
        feature_dim=int(env.observation_space.shape[0]),
        steps_per_second=round(steps_per_second, 1),
    )
    print(json.dumps(summary, indent=2))


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


def cmd_train_saliency(args: argparse.Namespace) -> None:
    from saliency_rl.saliency.fit import fit_predictor

    if not 0 <= args.holdout < 1:
        raise SaliencyRLError(f"--holdout must be in [0, 1), got {args.holdout}")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    out = args.out or os.path.join(args.dataset, "predictors", args.model)
    report = fit_predictor(
        args.dataset,
        out,
        model=args.model,
        size=args.size,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        holdout=args.holdout,
        seed=args.seed,
        device=args.device,
        progress=not args.no_progress,
    )
    held = report["holdout_metrics"]
    print(
        f"trained {args.model} on {len(report['train_frames'])} frames in "
        f"{report['train_seconds']:.0f} s; checkpoint {out}"
    )
    if held and held.get("max_f_beta") is not None:
        print(
            f"held-out {len(report['holdout_frames'])} frames: max F-beta "
            f"{held['max_f_beta']:.3f}  MAE {held['mae']:.4f}"
        )
    else:
        print("no held-out frames with salient points: no F-beta (see report.json)")
    print(f"report {os.path.join(out, 'report.json')}  preview {os.path.join(out, 'preview.png')}")


def cmd_label(args: argparse.Namespace) -> None:
    from saliency_rl.saliency.label import label_dataset

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    summary = label_dataset(
        args.dataset,
        args.predictor,
        batch_size=args.batch_size,
        device=args.device,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    speed = summary["frames_per_second"]
    print(
        f"labelled {summary['frames_labelled']} frames in {summary['episodes_labelled']} episodes"
        + (f" ({speed:.0f} frames/s)" if speed else "")
        + f"; skipped {summary['episodes_skipped']} episodes already labelled by this predictor"
    )


# ---------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="saliency-rl",
        description="Visual reinforcement and imitation learning guided by saliency.",
    )
    parser.add_argument("--version", action="version", version=f"saliency-rl {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    collect = commands.add_parser(
        "collect",
        help="roll out a policy into a dataset",
        description="Roll out a behaviour policy into a dataset directory (created, or appended to "
        "if it holds the same env spec and options).",
    )
    collect.add_argument(
        "--env",
        required=True,
        help="env spec: dmc:cartpole-swingup, metaworld:drawer-open, atari:MsPacman",
    )
    collect.add_argument("--out", required=True, help="dataset directory")
    budget = collect.add_mutually_exclusive_group(required=True)
    budget.add_argument("--episodes", type=positive_int, help="number of episodes")
    budget.add_argument(
        "--frames", type=positive_int, help="number of frames (the last episode is cut)"
    )
    collect.add_argument(
        "--policy",
        choices=("random", "expert"),
        default="random",
        help="behaviour policy: random, or expert (Meta-World's scripted policy)",
    )
    collect.add_argument(
        "--seed", type=non_negative_int, default=0, help="base seed; episode i uses seed+i (0)"
    )
    collect.add_argument(
        "--depth",
        action="store_true",
        help="also store MuJoCo's depth render (for MultiMAE's depth and normals modalities)",
    )
    collect.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_env_options(collect)
    collect.set_defaults(handler=cmd_collect)

    annotate = commands.add_parser(
        "annotate",
        help="annotate frames of a dataset with clicks",
        description="Choose frames of a dataset and store click annotations: serve a web page "
        "to click on (until Ctrl-C; every click is saved at once), or let the oracle click.",
    )
    annotate.add_argument("dataset", help="dataset directory")
    annotate.add_argument(
        "--oracle",
        action="store_true",
        help="click the simulator's salient points instead of a person; frames a person "
        "annotated are kept as they are",
    )
    annotate.add_argument(
        "--oracle-overwrite",
        action="store_true",
        help="with --oracle: replace a person's clicks on the selected frames with the "
        "oracle's (a person's work is lost)",
    )
    annotate.add_argument("--frames", type=positive_int, default=10, help="frames to annotate (10)")
    annotate.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of the frame choice (0)"
    )
    annotate.add_argument(
        "--port", type=non_negative_int, default=8765, help="web page port (8765; 0: any free one)"
    )
    annotate.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this machine only)"
    )
    annotate.add_argument("--annotator", help="name stored with the clicks (your login name)")
    annotate.set_defaults(handler=cmd_annotate)

    info = commands.add_parser(
        "info",
        help="describe a dataset and find damaged files",
        description="Print a dataset's spec, size and fields, and check that every episode and "
        "field file opens and matches meta.json (dtype, shape, length; the headers only, so it "
        "is quick). Damaged or foreign files are named, with exit code 2.",
    )
    info.add_argument("dataset", help="dataset directory")
    info.add_argument(
        "--check",
        action="store_true",
        help="also read every file in full (slow: the whole dataset): finds damage inside a "
        "file and NaN or inf in float fields",
    )
    info.set_defaults(handler=cmd_info)

    envs = commands.add_parser(
        "envs",
        help="list environments and presets",
        description="List every task spec and the named presets.",
    )
    envs.add_argument(
        "suite", nargs="?", choices=("dmc", "metaworld", "atari", "fake"), help="only this suite"
    )
    envs.set_defaults(handler=cmd_envs)

    train_saliency = commands.add_parser(
        "train-saliency",
        help="fit a saliency predictor on a dataset's annotated frames",
        description="Train a saliency predictor (small U-Net or PiCANet-style) on the annotated "
        "frames of a dataset, holding some out; writes a checkpoint (config.json, "
        "model.safetensors), report.json (max F-beta, MAE on the held-out frames) and preview.png.",
    )
    train_saliency.add_argument("dataset", help="dataset directory with annotations")
    train_saliency.add_argument(
        "--out", help="checkpoint directory (default: DATASET/predictors/<model>)"
    )
    train_saliency.add_argument(
        "--model",
        choices=("unet", "picanet"),
        default="unet",
        help="unet: small U-Net, fast (default); picanet: PiCANet-style with attention",
    )
    train_saliency.add_argument(
        "--size", choices=("small", "tiny"), default="small", help="network size (small)"
    )
    train_saliency.add_argument(
        "--steps", type=positive_int, help="optimiser steps (unet 1500, picanet 1000)"
    )
    train_saliency.add_argument(
        "--batch-size", type=positive_int, default=16, help="augmented frames a step (16)"
    )
    train_saliency.add_argument("--lr", type=float, default=3e-4, help="AdamW peak lr (3e-4)")
    train_saliency.add_argument(
        "--holdout",
        type=float,
        default=0.2,
        help="fraction of annotated frames held out for the report (0.2; 0 trains on all)",
    )
    train_saliency.add_argument("--seed", type=non_negative_int, default=0, help="random seed (0)")
    train_saliency.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA if present"
    )
    train_saliency.add_argument(
        "--threads", type=positive_int, help="torch CPU threads (torch's default: the cores)"
    )
    train_saliency.add_argument("--no-progress", action="store_true", help="no progress bar")
    train_saliency.set_defaults(handler=cmd_train_saliency)

    label = commands.add_parser(
        "label",
        help="add a predicted saliency map to every frame of a dataset",
        description="Pseudo-label every frame with a trained predictor (train-saliency): adds the "
        "`saliency` field, one file per episode, never touching the frames. Every episode is "
        "checked to open first, and the labels appear (and meta.json declares them) only once "
        "every episode has one, so a failure leaves the dataset as it was. Resumable: episodes "
        "already labelled by the same predictor are skipped.",
    )
    label.add_argument("dataset", help="dataset directory")
    label.add_argument(
        "--predictor", required=True, help="predictor checkpoint directory (train-saliency --out)"
    )
    label.add_argument(
        "--batch-size", type=positive_int, default=64, help="frames a forward pass (64)"
    )
    label.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA if present"
    )
    label.add_argument(
        "--overwrite", action="store_true", help="replace labels written by another predictor"
    )
    label.add_argument(
        "--threads", type=positive_int, help="torch CPU threads (torch's default: the cores)"
    )
    label.add_argument("--no-progress", action="store_true", help="no progress bar")
    label.set_defaults(handler=cmd_label)

    pretrain = commands.add_parser(
        "pretrain",
        help="pretrain a MultiMAE (or MAE) encoder on a dataset",
        description="Masked multi-modal pretraining (MultiMAE) on a dataset's frames and "
        "fields; with --modalities rgb it is a plain MAE. Writes checkpoints, metrics.csv and "
        "reconstruction PNGs into --out; the newest checkpoint is the encoder for policies.",
    )
    pretrain.add_argument("dataset", help="dataset directory")
    pretrain.add_argument(
        "--modalities",
        default="rgb,saliency",
        help="comma-separated modalities: rgb, saliency, depth, normals (rgb,saliency); "
        "saliency needs `saliency-rl label` first, depth and normals a depth field",
    )
    pretrain.add_argument("--steps", type=positive_int, default=10_000, help="steps (10000)")
    pretrain.add_argument("--batch-size", type=positive_int, default=64, help="frames a step (64)")
    pretrain.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (1e-4)")
    pretrain.add_argument(
        "--warmup", type=non_negative_int, help="linear warm-up steps (5%% of --steps)"
    )
    pretrain.add_argument(
        "--out", help="run directory (default: runs/<dataset>__multimae-<modalities>__<seed>)"
    )
    pretrain.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its newest checkpoint (starts fresh if none)",
    )
    pretrain.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA if present"
    )
    pretrain.add_argument("--seed", type=non_negative_int, default=0, help="random seed (0)")
    pretrain.add_argument(
        "--model", choices=("visarl", "tiny"), default="visarl",
        help="model size: visarl (depth 4, width 256, 4 heads) or tiny (smoke tests)",
    )  # fmt: skip
    pretrain.add_argument(
        "--patch-size", type=positive_int, help="patch side in pixels (8; must divide the frame)"
    )
    pretrain.add_argument("--mask-ratio", type=float, help="share of tokens masked (0.75)")
    pretrain.add_argument(
        "--norm-pix-loss", action="store_true", help="reconstruct per-patch normalised RGB (MAE)"
    )
    pretrain.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=1000,
        help="steps between checkpoints (1000)",
    )
    pretrain.add_argument("--no-progress", action="store_true", help="no progress bar")
    pretrain.set_defaults(handler=cmd_pretrain)

    train = commands.add_parser(
        "train",
        help="train a policy: a2c (Atari, self-supervised attention), sac (pixels), bc (demos)",
        description="Train a policy; the algorithm is the first argument.",
    )
    algorithms = train.add_subparsers(dest="algorithm", metavar="ALGORITHM", required=True)

    features = commands.add_parser(
        "features",
        help="frozen-encoder features: roll out an env on them, or cache a dataset's",
        description="Load a pretrained MultiMAE as a frozen encoder and either roll out a random "
        "policy in an environment on its features (--env) or compute every frame's features of a "
        "dataset once, stored as a dataset field (--dataset).",
    )
    features.add_argument(
        "--encoder", required=True, help="pretraining run or checkpoint directory"
    )
    features.add_argument(
        "--mode",
        choices=("rgb", "rgb+saliency-pretrain-only", "rgb+saliency"),
        help="rgb (RGB-only pretraining), rgb+saliency-pretrain-only (RGB input to a model "
        "pretrained with saliency) or rgb+saliency (default: what the model was pretrained on)",
    )
    features.add_argument(
        "--predictor", help="saliency predictor checkpoint (mode rgb+saliency in an env)"
    )
    target = features.add_mutually_exclusive_group(required=True)
    target.add_argument("--dataset", help="dataset whose frames to encode once")
    target.add_argument("--env", help="env spec to roll out a random policy in, on the features")
    features.add_argument("--name", help="dataset field name (default: features_<run>_<mode>)")
    features.add_argument("--overwrite", action="store_true", help="recompute an existing field")
    features.add_argument(
        "--batch-size", type=positive_int, default=256, help="frames encoded at once (256)"
    )
    features.add_argument(
        "--episodes", type=positive_int, default=2, help="episodes to roll out (2)"
    )
    features.add_argument("--frame-stack", type=positive_int, help="frames per observation (1)")
    features.add_argument("--action-repeat", type=positive_int, help="action repeat (1)")
    features.add_argument(
        "--episode-length", type=positive_int, help="steps per episode (the suite's)"
    )
    features.add_argument("--seed", type=non_negative_int, default=0, help="seed (0)")
    features.add_argument(
        "--device", default="auto", choices=("auto", "cpu", "cuda"), help="auto: CUDA when present"
    )
    features.add_argument("--no-progress", action="store_true", help="no progress bar")
    features.set_defaults(handler=cmd_features)

    pretrain_attention = commands.add_parser(
        "pretrain-attention",
        help="pretrain the self-supervised attention module on Atari datasets",
        description="Pretrain the attention module offline on frame pairs of one or more Atari "
        "datasets (saliency-rl collect --env atari:<Game>), for `train a2c --attention frozen "
        "| universal | transfer --attention-checkpoint OUT`.",
    )
    pretrain_attention.add_argument("dataset", nargs="+", help="dataset directories (1+ games)")
    pretrain_attention.add_argument(
        "--out", help="checkpoint directory (default: runs/<datasets>__attention__<seed>)"
    )
    pretrain_attention.add_argument(
        "--steps", type=positive_int, default=10_000, help="steps (10000)"
    )
    pretrain_attention.add_argument(
        "--batch-size", type=positive_int, default=32, help="frame pairs a step (32)"
    )
    pretrain_attention.add_argument("--lr", type=float, default=1e-3, help="Adam lr (1e-3)")
    pretrain_attention.add_argument(
        "--max-gap", type=positive_int, default=59, help="most steps between a pair's frames (59)"
    )
    pretrain_attention.add_argument("--seed", type=non_negative_int, default=0, help="seed (0)")
    pretrain_attention.add_argument(
        "--log-every", type=positive_int, default=100, help="steps between log rows (100)"
    )
    pretrain_attention.add_argument(
        "--checkpoint-every", type=positive_int, default=1000, help="steps between saves (1000)"
    )
    pretrain_attention.add_argument(
        "--resume",
        action="store_true",
        help="continue the checkpoint in --out (to --steps; its other settings are kept)",
    )
    pretrain_attention.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA if present"
    )
    pretrain_attention.add_argument("--no-progress", action="store_true", help="no progress bar")
    pretrain_attention.set_defaults(handler=cmd_pretrain_attention)

    # Commands added since live in saliency_rl/commands/<name>.py, one module each, found here.
    for module in _command_modules():
        module.register(commands, algorithms)
    return parser


def _command_modules() -> list:
    """Every ``saliency_rl.commands`` module, in name order; each has ``register(commands, train)``."""
    import importlib
    import pkgutil

    import saliency_rl.commands as package

    names = sorted(info.name for info in pkgutil.iter_modules(package.__path__))
    return [
        importlib.import_module(f"saliency_rl.commands.{name}") for name in names if name[0] != "_"
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.handler(args)
    except SaliencyRLError as error:
        print(f"saliency-rl: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - silence Python's own report at exit
        return 0
    except KeyboardInterrupt:
        print(
            "saliency-rl: interrupted; everything finished before the interruption is saved",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
