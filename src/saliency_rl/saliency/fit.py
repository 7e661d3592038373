"""Fit a saliency predictor on a dataset's annotated frames: ``saliency-rl train-saliency``.

Recipe (PiCANet, Liu et al. CVPR 2018, as used for ViSaRL's predictor): binary
cross-entropy against the soft Gaussian maps at every side output (deep supervision), flips
and colour jitter, AdamW at 3e-4 with cosine annealing; we add random shifts, rotations and
zooms (``saliency.augment``). From a few
frames (5 to 10 in ViSaRL), each step draws a batch with replacement from the training
frames and augments it anew, so a few hundred steps see thousands of distinct images.

Some annotated frames are held out; the report gives max F-beta and MAE on them
(``saliency.metrics``), and a preview PNG shows them with their predicted maps.

The output directory is a checkpoint (``config.json`` + ``model.safetensors``) plus
``report.json`` and ``preview.png``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from saliency_rl import __version__
from saliency_rl.checkpoint import save_checkpoint
from saliency_rl.data.atomic import atomic_write_json
from saliency_rl.data.dataset import Dataset
from saliency_rl.devices import resolve_device
from saliency_rl.errors import DatasetError
from saliency_rl.precision import (
    PrecisionChoice,
    autocast,
    check_precision,
    decide_precision,
    on_a_copy,
)
from saliency_rl.saliency.annotations import AnnotationStore
from saliency_rl.saliency.augment import AugmentConfig, augment
from saliency_rl.saliency.maps import map_to_uint8
from saliency_rl.saliency.metrics import saliency_metrics
from saliency_rl.saliency.overlay import save_grid
from saliency_rl.saliency.predictor import FORMAT, SaliencyPredictor, build_model

PREVIEW_FRAMES = 8
# About 5 and 10 minutes on 2 shared CPU cores; held-out F-beta still rose from 300 to
# 1000 steps (benchmarks/saliency_predictors.py).
DEFAULT_STEPS = {"unet": 1500, "picanet": 1000}


@dataclass
class FitConfig:
    """How a saliency predictor is trained; every field is saved in the checkpoint config."""

    model: str = "unet"
    """Network: ``unet`` (small U-Net, the fast default) or ``picanet`` (PiCANet-style)."""
    size: str = "small"
    """Named size of the network: ``small``, or ``tiny`` for tests."""
    steps: int | None = None
    """Optimiser steps; None: the model's default (DEFAULT_STEPS)."""
    batch_size: int = 16
    """Augmented frames per step, drawn with replacement from the training frames."""
    lr: float = 3e-4
    """AdamW peak learning rate, annealed to 0 on a cosine (the paper recipe: 3e-4)."""
    weight_decay: float = 0.01
    """AdamW weight decay (PyTorch's default)."""
    holdout: float = 0.2
    """Fraction of the annotated frames held out for evaluation (at least one frame is kept
    for training); ignored when the held-out frames are given explicitly."""
    seed: int = 0
    """Seed of the split, the initial weights, the batches and the augmentation."""
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """Flips and colour jitter (saliency.augment)."""
    precision: str = "fp32"
    """fp32; bf16 (the network under bf16 autocast, the loss in fp32); auto: the faster of
    the two, timed on a copy of the network at start (saliency_rl.precision). The choice
    goes into report.json ("precision")."""


def deep_supervision_loss(logits: Sequence[torch.Tensor], maps: torch.Tensor) -> torch.Tensor:
    """Sum over outputs of the binary cross-entropy with the soft maps (PiCANet's deep supervision).

    logits: side outputs [(N, 1, h_i, w_i), ...]
    maps: (N, H, W) float in [0, 1]; resized (area average) to each side output's size
    """
    target = maps[:, None]  # (N, 1, H, W)
    loss = logits[0].new_zeros(())
    for side in logits:
        resized = (
            target
            if side.shape[-2:] == target.shape[-2:]
            else F.adaptive_avg_pool2d(target, side.shape[-2:])
        )
        loss = loss + F.binary_cross_entropy_with_logits(side.float(), resized)
    return loss


def split_frames(
    annotated: Sequence[int], holdout: float, seed: int
) -> tuple[list[int], list[int]]:
    """(train, held-out) frames: a seeded random ``holdout`` fraction, at least one to train."""
    annotated = sorted(int(f) for f in annotated)
    count = min(round(holdout * len(annotated)), len(annotated) - 1)
    if holdout > 0 and len(annotated) >= 2:
        count = max(count, 1)
    held = set(np.random.default_rng(seed).choice(annotated, size=count, replace=False).tolist())
    return [f for f in annotated if f not in held], sorted(held)


def annotated_data(dataset: Dataset, frames: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """uint8 frames (N, C, H, W) and their float32 click maps (N, H, W)."""
    store = AnnotationStore(dataset)
    rgb = dataset.frames(list(frames), ["rgb"])["rgb"]
    maps = np.stack([store.saliency_map(f) for f in frames]).astype(np.float32)
    return rgb, maps


def background_masks(
    dataset: Dataset, frames: Sequence[int], config: AugmentConfig
) -> tuple[np.ndarray | None, str]:
    """The frames' ``background`` masks (N, H, W) for background replacement, or None, and
    a line for the report saying which and why."""
    if config.background <= 0:
        return None, "off (switched off: background=0)"
    if "background" not in dataset.meta["fields"]:
        return None, (
            "off: the dataset has no background masks (collected before they were stored, "
            "with --no-background, or not a MuJoCo task); recollect to turn it on"
        )
    masks = dataset.frames(list(frames), ["background"])["background"].astype(bool)
    return masks, f"on (probability {config.background:g})"


def _check_some_clicks(
    store: AnnotationStore, annotated: Sequence[int], train_frames: Sequence[int]
) -> None:
    """DatasetError when the training maps would all be empty: a predictor fitted on them
    learns to predict nothing, and its report would look like a success."""
    clicked = {f for f in annotated if store.clicks(f)}
    if not clicked:
        raise DatasetError(
            f"none of the {len(annotated)} annotated frames in {store.root} has a click, so "
            "every saliency map is empty and there is nothing to learn: click what matters in "
            f"the web page (`saliency-rl annotate {store.dataset.root}`)"
        )
    if not clicked.intersection(train_frames):
        raise DatasetError(
            f"none of the {len(train_frames)} training frames in {store.root} has a click (the "
            f"{len(clicked)} clicked frames are all held out): lower --holdout or annotate more"
        )


def fit_predictor(
    dataset: Dataset | str | Path,
    out_dir: str | Path,
    config: FitConfig | None = None,
    *,
    holdout_frames: Sequence[int] | None = None,
    device: str = "auto",
    progress: bool = True,
    **overrides: Any,
) -> dict:
    """Train a saliency predictor on the annotated frames of ``dataset`` and save it.

    Args:
        dataset: a Dataset or its directory; its annotations are the training data.
        out_dir: the checkpoint directory to write (config.json, model.safetensors,
            report.json, preview.png); an existing checkpoint there is replaced.
        config: the training settings; ``overrides`` replace single fields
            (``fit_predictor(ds, out, model="picanet", steps=300)``).
        holdout_frames: annotated frames to hold out instead of a random fraction
            (an empty list trains on all).
        device: ``auto``, ``cpu`` or ``cuda``.
        progress: show a progress bar with the loss on stderr.

    Returns:
        The report (also in ``out_dir/report.json``): metrics on the held-out frames
        (``None`` when none are held out) and on the training frames, timings, the split.

    Raises:
        DatasetError: no frame is annotated, or no training frame has a click (every map
            would be empty); nothing is written then.
    """
    config = config or FitConfig()
    unknown = set(overrides) - set(FitConfig.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown FitConfig fields: {', '.join(sorted(unknown))}")
    config = FitConfig(**{**asdict(config), "augment": config.augment, **overrides})
    if isinstance(config.augment, dict):
        config.augment = AugmentConfig(**config.augment)
    if config.steps is None:
        config.steps = DEFAULT_STEPS.get(config.model, 1000)
    if config.steps < 1 or config.batch_size < 1:
        raise ValueError("steps and batch_size must be >= 1")
    check_precision(config.precision)
    dataset = dataset if isinstance(dataset, Dataset) else Dataset.open(dataset)
    annotated = AnnotationStore(dataset).annotated()
    if not annotated:
        raise DatasetError(
            f"dataset {dataset.root} has no annotated frames: annotate some first, e.g. "
            f"`saliency-rl annotate {dataset.root} --oracle --frames 10`"
        )
    if holdout_frames is None:
        train_frames, held_frames = split_frames(annotated, config.holdout, config.seed)
    else:
        held_frames = sorted(int(f) for f in holdout_frames)
        missing = sorted(set(held_frames) - set(annotated))
        if missing:
            raise DatasetError(f"held-out frames {missing[:5]} are not annotated")
        train_frames = [f for f in annotated if f not in set(held_frames)]
        if not train_frames:
            raise DatasetError("every annotated frame is held out: nothing is left to train on")
    _check_some_clicks(AnnotationStore(dataset), annotated, train_frames)
    device_ = resolve_device(device)
    generator = torch.Generator().manual_seed(config.seed)  # batches and augmentation

    rgb, maps = annotated_data(dataset, train_frames)
    frames_t = torch.from_numpy(rgb).to(device_)  # (K, C, H, W) uint8
    maps_t = torch.from_numpy(maps).to(device_)  # (K, H, W)
    backgrounds, background_note = background_masks(dataset, train_frames, config.augment)
    backgrounds_t = None if backgrounds is None else torch.from_numpy(backgrounds).to(device_)
    with torch.random.fork_rng(devices=[]):  # seeded weights; the caller's RNG untouched
        torch.manual_seed(config.seed)
        model = build_model(config.model, config.size, dataset.image_size, rgb.shape[1])
    model = model.to(device_)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    precision = _precision(config, model, frames_t, maps_t, device_)

    # ------------------------------------------------------------------ training
    model.train()
    losses = []
    start = time.perf_counter()
    bar = tqdm(
        range(config.steps), disable=not progress, desc=f"fit {config.model}", dynamic_ncols=True
    )
    for step in bar:
        lr = 0.5 * config.lr * (1 + math.cos(math.pi * step / config.steps))  # cosine annealing
        for group in optimizer.param_groups:
            group["lr"] = lr
        index = torch.randint(len(train_frames), (config.batch_size,), generator=generator)
        index = index.to(device_)
        x, y = augment(
            frames_t[index],
            maps_t[index],
            generator,
            config.augment,
            None if backgrounds_t is None else backgrounds_t[index],
        )
        with autocast(precision.chosen, device_):
            loss = deep_supervision_loss(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % 10 == 0 or step == config.steps - 1:
            bar.set_postfix(loss=f"{np.mean(losses[-10:]):.4f}")
    train_seconds = time.perf_counter() - start

    # ------------------------------------------------------------------ save, evaluate
    checkpoint_config = {
        "format": FORMAT,
        "model": config.model,
        "model_kwargs": model.config,
        "image_size": list(dataset.image_size),
        "in_channels": int(rgb.shape[1]),
        "training": asdict(config),
        "dataset": str(dataset.root.resolve()),
        "env_spec": dataset.env_spec,
        "train_frames": train_frames,
        "holdout_frames": held_frames,
        "package_version": __version__,
    }
    out_dir = Path(out_dir)
    save_checkpoint(out_dir, checkpoint_config, model.state_dict())
    predictor = SaliencyPredictor(model, checkpoint_config, device_)
    report = {
        "model": config.model,
        "dataset": str(dataset.root),
        "train_frames": train_frames,
        "holdout_frames": held_frames,
        "steps": config.steps,
        "train_seconds": train_seconds,
        "background_replacement": background_note,
        "initial_loss": losses[0],
        "final_loss": float(np.mean(losses[-20:])),
        "loss_every_50_steps": [
            float(np.mean(losses[i : i + 50])) for i in range(0, len(losses), 50)
        ],
        "holdout_metrics": None,
        "train_metrics": evaluate_predictor(predictor, dataset, train_frames),
        "config": asdict(config),
        "precision": precision.to_json(),
        "checkpoint": str(out_dir),
    }
    if held_frames:
        report["holdout_metrics"] = evaluate_predictor(predictor, dataset, held_frames)
    preview = held_frames or train_frames
    save_preview(out_dir / "preview.png", predictor, dataset, preview[:PREVIEW_FRAMES])
    atomic_write_json(out_dir / "report.json", report)
    return report


def _precision(
    config: FitConfig,
    model: torch.nn.Module,
    frames: torch.Tensor,
    maps: torch.Tensor,
    device: torch.device,
) -> PrecisionChoice:
    """``config.precision``; ``auto`` timed on a copy of the network on a batch of the
    training frames (no augmentation, no draw from the fit's generator)."""

    def make_trial() -> Callable[[], torch.Tensor]:
        index = torch.arange(config.batch_size, device=device) % len(frames)
        x, y = frames[index].float() / 255.0, maps[index]
        return on_a_copy(model, lambda twin: deep_supervision_loss(twin(x), y))

    name = f"{config.model} {config.size} forward and backward, batch {config.batch_size}"
    return decide_precision(config.precision, device, make_trial, trial_name=name)


def evaluate_predictor(
    predictor: SaliencyPredictor, dataset: Dataset, frames: Sequence[int]
) -> dict[str, float] | None:
    """Max F-beta and MAE of the predictor on annotated ``frames`` (saliency.metrics protocol).

    ``max_f_beta`` is None when no frame has a visible salient point.
    """
    if not frames:
        return None
    rgb, truth = annotated_data(dataset, frames)
    predicted = predictor.predict(rgb)
    if not (map_to_uint8(truth) > 127).any():
        return {
            "max_f_beta": None,
            "mae": float(np.abs(predicted - truth).mean()),
            "frames": len(frames),
        }
    return saliency_metrics(predicted, truth)


def save_preview(
    path: Path, predictor: SaliencyPredictor, dataset: Dataset, frames: Sequence[int]
) -> None:
    """PNG grid, one column per frame; rows: frame, annotated map, predicted map, and the
    frame masked by the predicted map (scaled to peak 1 for visibility)."""
    rgb, truth = annotated_data(dataset, frames)
    predicted = predictor.predict(rgb)
    colour = np.repeat(rgb, 3, axis=1) if rgb.shape[1] == 1 else rgb[:, :3]
    colour = colour.transpose(0, 2, 3, 1)  # (N, H, W, 3)

    def grey(maps: np.ndarray) -> list[np.ndarray]:
        return [np.repeat(map_to_uint8(m)[..., None], 3, axis=-1) for m in maps]

    peak = predicted.reshape(len(predicted), -1).max(axis=1).clip(min=1e-6)[:, None, None]
    masked = (colour * (predicted / peak)[..., None]).astype(np.uint8)
    tiles = [*colour, *grey(truth), *grey(predicted), *masked]
    save_grid(path, tiles, columns=len(frames))
