"""``saliency-rl features``: a frozen MultiMAE's features, in an env or cached for a dataset."""

from __future__ import annotations

import argparse

from saliency_rl.commands.args import add_run_options, non_negative_int, positive_int

HELP = "frozen-encoder features: roll out an env on them, or cache a dataset's"
DESCRIPTION = (
    "Load a pretrained MultiMAE as a frozen encoder and either roll out a random "
    "policy in an environment on its features (--env) or compute every frame's features of a "
    "dataset once, stored as a dataset field (--dataset)."
)


def run(args: argparse.Namespace) -> None:
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


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--encoder", required=True, help="pretraining run or checkpoint directory")
    parser.add_argument(
        "--mode",
        choices=("rgb", "rgb+saliency-pretrain-only", "rgb+saliency", "rgb_x_saliency"),
        help="rgb (RGB-only pretraining), rgb+saliency-pretrain-only (RGB input to a model "
        "pretrained with saliency), rgb+saliency, or rgb_x_saliency (frames multiplied by "
        "their saliency maps; default: what the model was pretrained on)",
    )
    parser.add_argument(
        "--predictor", help="saliency predictor checkpoint (mode rgb+saliency in an env)"
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--dataset", help="dataset whose frames to encode once")
    target.add_argument("--env", help="env spec to roll out a random policy in, on the features")
    parser.add_argument("--name", help="dataset field name (default: features_<run>_<mode>)")
    parser.add_argument("--overwrite", action="store_true", help="recompute an existing field")
    parser.add_argument(
        "--batch-size", type=positive_int, default=256, help="frames encoded at once (256)"
    )
    parser.add_argument("--episodes", type=positive_int, default=2, help="episodes to roll out (2)")
    parser.add_argument("--frame-stack", type=positive_int, help="frames per observation (1)")
    parser.add_argument("--action-repeat", type=positive_int, help="action repeat (1)")
    parser.add_argument(
        "--episode-length", type=positive_int, help="steps per episode (the suite's)"
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed (0)")
    add_run_options(parser)
