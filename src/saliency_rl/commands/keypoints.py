"""``saliency-rl keypoints``: keypoints of an attention mask or a Transporter, scored on the RAM."""

from __future__ import annotations

import argparse
import os

from saliency_rl.commands.args import add_run_options, non_negative_int, positive_int

HELP = "keypoints from an attention mask or a Transporter; precision/recall on the RAM"
DESCRIPTION = (
    "Take k keypoints per frame: the top-k peaks of the attention mask "
    "(smoothed, 3x3 non-maximum suppression; any k, no retraining) or a Transporter's K "
    "keypoints. Frames are played by a random policy in --env (MsPacman, Frostbite and "
    "Berzerk have ground-truth object positions from the RAM: precision and recall are "
    "printed) or read from --dataset. Writes OUT/keypoints.json and OUT/overlays/*.png."
)


def run(args: argparse.Namespace) -> None:
    from saliency_rl.devices import resolve_device
    from saliency_rl.envs.atari_vector import atari_game
    from saliency_rl.errors import EnvSpecError
    from saliency_rl.experiments.keypoints import (
        dataset_frames,
        keypoints_report,
        load_keypoint_model,
        play_frames,
    )

    model = load_keypoint_model(args.model, resolve_device(args.device))
    if args.dataset:
        frames = dataset_frames(args.dataset, args.frames)
    else:
        spec = args.env
        if spec is None:
            if len(model.games) != 1:
                raise EnvSpecError(
                    f"{args.model} was trained on {model.games or 'unknown games'}: say which "
                    "game to play with --env atari:<Game>, or give --dataset DIR"
                )
            spec = f"atari:{model.games[0]}"
        frames = play_frames(atari_game(spec), args.frames, seed=args.seed)
    out = args.out or os.path.join(
        "runs", f"keypoints__{os.path.basename(os.path.normpath(args.model))}__k{args.k}"
    )
    report = keypoints_report(
        model,
        frames,
        args.k,
        out,
        threshold=args.threshold,
        sigma=args.sigma,
        overlays=args.overlays,
    )
    print(f"{model.kind} keypoints, k={args.k}, {len(frames.frames)} frames of {frames.game}")
    metrics = report["metrics"]
    if metrics is None:
        print("no RAM ground truth for these frames: keypoints and overlays only")
    else:
        print(
            f"precision {metrics['precision']:.3f}  recall {metrics['recall']:.3f}  "
            f"(threshold {args.threshold:g} px of 84x84; {int(metrics['matched'])} matched, "
            f"{int(metrics['keypoints'])} keypoints, {int(metrics['objects'])} objects)"
        )
    print(f"wrote {out}/keypoints.json and {out}/overlays/")


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        metavar="RUN_OR_CKPT",
        help="pretrain-attention or pretrain-transporter checkpoint, or an A2C run with attention",
    )
    parser.add_argument("--k", type=positive_int, required=True, help="keypoints per frame")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--env", help="atari:<Game> to play (default: the game the model was trained on)"
    )
    source.add_argument("--dataset", help="take the frames from this Atari dataset instead")
    parser.add_argument("--frames", type=positive_int, default=200, help="frames (200)")
    parser.add_argument(
        "--threshold",
        type=float,
        default=12.0,
        help="largest keypoint-object distance that counts as a match, pixels of 84x84 (12: "
        "one cell of the 7x7 mask)",
    )
    parser.add_argument(
        "--sigma", type=float, default=0.5, help="Gaussian smoothing of the mask, cells (0.5)"
    )
    parser.add_argument(
        "--overlays", type=non_negative_int, default=16, help="overlay pictures to write (16)"
    )
    parser.add_argument("--seed", type=non_negative_int, default=1, help="random policy seed (1)")
    add_run_options(
        parser,
        out="output directory (default: runs/keypoints__<model>__k<K>)",
        device="cpu",
        progress=False,
    )
