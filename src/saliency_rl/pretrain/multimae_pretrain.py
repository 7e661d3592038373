"""Masked multi-modal pretraining of MultiMAE on a dataset: ``saliency-rl pretrain``.

The loop: sample a batch of frames, flip each horizontally with probability 0.5 (every
modality of a frame alike), mask 75% of all tokens with Dirichlet shares across modalities,
reconstruct, and take an AdamW step (betas 0.9, 0.95, weight decay 0.05, as MAE and
MultiMAE) on a linear warm-up then cosine learning-rate schedule.

Run directory::

    OUT/
      metrics.csv                         one row per step: losses, learning rate, images/s
      tb/                                 the same numbers as TensorBoard events
      reconstructions/step_000200.png     masked inputs | reconstructions | targets, per modality
      checkpoints/step_000200/            a checkpoint (``saliency_rl.checkpoint``'s format):
        config.json                         the model config, the pretraining config, the dataset
        model.safetensors                   the weights
        training_state/                     for an exact resume: step, optimizer, torch RNG

The latest checkpoint is the encoder: ``FrozenMultiMAEEncoder.load(OUT)`` finds it.

Exact resume: the data order and the flips are functions of (seed, step) (an epoch is a
permutation drawn from ``numpy.random.default_rng([seed, epoch])``), the masking draws from
torch's global RNG, whose state is saved, and the learning rate is a function of the step;
so N steps in one go and N/2 + resume + N/2 give bitwise the same weights on the same
machine and thread count.

Data: every requested field of every frame is loaded into memory once (uint8 RGB: 12 KiB a
64x64 frame, 1.2 GB for 100k frames; saliency a third of that).
"""

from __future__ import annotations

import dataclasses
import math
import re
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from saliency_rl import __version__
from saliency_rl.checkpoint import is_checkpoint, load_checkpoint, load_training_state, read_config
from saliency_rl.data.atomic import atomic_write_bytes
from saliency_rl.data.dataset import Dataset
from saliency_rl.devices import resolve_device
from saliency_rl.errors import DatasetError, SaliencyRLError
from saliency_rl.models.multimae import (
    MODALITIES,
    ModelError,
    MultiMAE,
    find_checkpoint,
    multimae_config,
    output_to_image,
    prepare_inputs,
)
from saliency_rl.precision import (
    PrecisionChoice,
    autocast,
    check_precision,
    decide_precision,
    on_a_copy,
)
from saliency_rl.run_log import Cadence, RunLog

CHECKPOINTS_DIR = "checkpoints"
RECONSTRUCTIONS_DIR = "reconstructions"
STEP_DIR_PATTERN = re.compile(r"^step_(\d{6,})$")
MASK_COLOUR = torch.tensor([0.25, 0.35, 0.75])[None, :, None, None]  # masked patches in previews
# Settings that may change between a run and its resume without breaking exactness.
RESUMABLE_CHANGES = ("steps", "stop_at", "checkpoint_every", "keep_checkpoints")


class PretrainError(SaliencyRLError):
    """Pretraining cannot start or resume: the message says why and what to do."""


@dataclass
class PretrainConfig:
    """Pretraining settings; stored in every checkpoint's config.json."""

    modalities: tuple[str, ...] = ("rgb", "saliency")
    """Modalities to pretrain on (rgb, saliency, depth, normals); ("rgb",) is plain MAE."""
    model_size: str = "visarl"
    """A name from ``MODEL_SIZES``: visarl (depth 4, width 256, 4 heads) or tiny (tests)."""
    model_overrides: dict[str, Any] = field(default_factory=dict)
    """MultiMAEConfig fields to change, e.g. {"mask_ratio": 0.8, "norm_pix_loss": True}."""
    steps: int = 10_000
    """Optimiser steps in total."""
    batch_size: int = 64
    """Frames per step."""
    lr: float = 1e-4
    """Peak learning rate (MultiMAE's base rate 1e-4; ViSaRL's code uses it unscaled)."""
    min_lr: float = 0.0
    """Learning rate at the end of the cosine schedule (MultiMAE: 0)."""
    warmup: int | None = None
    """Linear warm-up steps; None: 5% of ``steps`` (MAE warms up 40 of 800 epochs)."""
    weight_decay: float = 0.05
    """AdamW weight decay (MAE, MultiMAE), not applied to biases, norms, tokens, embeddings."""
    betas: tuple[float, float] = (0.9, 0.95)
    """AdamW betas (MAE, MultiMAE)."""
    hflip: float = 0.5
    """Probability of flipping a frame (all its modalities) horizontally (MultiMAE: 0.5)."""
    seed: int = 0
    """Seeds the initial weights, the data order, the flips and the masks."""
    checkpoint_every: int = 1000
    """Steps between checkpoints; the last step always writes one."""
    keep_checkpoints: int = 2
    """Checkpoints kept (the newest); 0 keeps all."""
    stop_at: int | None = None
    """Stop after this step (checkpointed), keeping the schedule of ``steps``; resume later."""
    fovy_degrees: float | None = None
    """Vertical field of view of the camera, for normals from depth; None: the dataset's
    camera as recorded by ``collect --depth``, else MuJoCo's default of 45."""
    preview_frames: int = 4
    """Frames shown in the reconstruction PNG."""
    precision: str = "fp32"
    """fp32; bf16: the model's matrix work under bf16 autocast (weights, AdamW and the loss's
    reduction fp32); auto: the faster of the two, timed on a copy of the model on the first
    batch (saliency_rl.precision). The choice goes into every checkpoint's config.json
    ("precision"); a resumed run keeps it."""

    def __post_init__(self) -> None:
        self.modalities = tuple(self.modalities)
        self.betas = tuple(self.betas)
        for name in ("steps", "batch_size", "checkpoint_every", "preview_frames"):
            if int(getattr(self, name)) < 1:
                raise PretrainError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.stop_at is not None and not 1 <= self.stop_at <= self.steps:
            raise PretrainError(f"stop_at must be in [1, steps={self.steps}], got {self.stop_at}")
        if self.warmup is not None and self.warmup < 0:
            raise PretrainError(f"warmup must be >= 0, got {self.warmup}")
        if not self.lr > 0 or self.min_lr < 0 or self.min_lr > self.lr:
            raise PretrainError(f"need lr > 0 and 0 <= min_lr <= lr, got {self.lr}, {self.min_lr}")
        if self.weight_decay < 0:
            raise PretrainError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not 0.0 <= self.hflip <= 1.0:
            raise PretrainError(f"hflip is a probability, got {self.hflip}")
        check_precision(self.precision)

    @property
    def warmup_steps(self) -> int:
        return self.warmup if self.warmup is not None else max(1, self.steps // 20)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["modalities"] = list(self.modalities)
        out["betas"] = list(self.betas)
        return out


@dataclass
class PretrainSummary:
    """What a pretraining run did."""

    out_dir: Path
    checkpoint: Path
    """The latest checkpoint directory (the encoder)."""
    step: int
    """Steps done in total."""
    resumed_from: int | None
    """The step this call resumed from, or None for a fresh start."""
    losses: dict[str, float]
    """Mean losses of the last (up to 50) steps of this call: "loss" and one per modality."""
    images_per_second: float
    """Training throughput of this call (checkpoints and previews excluded)."""
    reconstruction_png: Path


def learning_rate(step: int, config: PretrainConfig) -> float:
    """Linear warm-up from 0 to ``lr``, then half a cosine down to ``min_lr`` (MAE, MultiMAE)."""
    warmup = config.warmup_steps
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, config.steps - warmup)
    return config.min_lr + (config.lr - config.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


# ---------------------------------------------------------------------- data
def missing_field_message(dataset: Dataset, modality: str, field_name: str) -> str:
    if field_name == "saliency":
        how = f"run `saliency-rl label {dataset.root} --predictor CKPT` first"
    elif field_name == "depth":
        how = "collect it with depth rendering (a float16 or uint16 `depth` field of (T, H, W))"
    else:
        how = f"write a {field_name!r} field with Dataset.write_field"
    lacking = dataset.episodes_lacking(field_name)
    if field_name in dataset.meta["extra_fields"] and len(lacking) < dataset.num_episodes:
        # Declared and written for some episodes: name the episode file that lacks it.
        return (
            f"{dataset.episode_file(lacking[0])} has no {field_name} field (needed by modality "
            f"{modality}), unlike {dataset.num_episodes - len(lacking)} other episodes: it was "
            f"collected after labelling or does not belong to this dataset; {how} again, or "
            "move the file out"
        )
    return f"dataset {dataset.root} has no {field_name} field, needed by modality {modality}: {how}"


def check_fields(dataset: Dataset, modalities: Sequence[str]) -> list[str]:
    """The dataset fields the modalities read; errors for unknown modalities and missing fields."""
    unknown = [m for m in modalities if m not in MODALITIES]
    if unknown:
        raise ModelError(
            f"unknown modality {unknown[0]!r}; valid modalities: {', '.join(MODALITIES)}"
        )
    fields = sorted({MODALITIES[m].field for m in modalities})
    # Damaged or foreign files are named before a field is reported missing.
    dataset.verify(extra_fields=fields)
    for m in modalities:
        if not dataset.has_field(MODALITIES[m].field):
            raise DatasetError(missing_field_message(dataset, m, MODALITIES[m].field))
    if dataset.num_frames == 0:
        raise DatasetError(f"dataset {dataset.root} has no frames")
    return sorted({MODALITIES[m].field for m in modalities})


class PretrainData:
    """The fields the modalities need, for every frame, in memory.

    Args:
        dataset: the dataset.
        modalities: names in ``MODALITIES``; each needs its dataset field (normals: depth).
    """

    def __init__(self, dataset: Dataset, modalities: Sequence[str]) -> None:
        self.fields = check_fields(dataset, modalities)
        parts: dict[str, list[np.ndarray]] = {name: [] for name in self.fields}
        for episode in range(dataset.num_episodes):
            for name, array in dataset.episode(episode, self.fields).items():
                parts[name].append(array)
        self.arrays = {name: np.concatenate(arrays) for name, arrays in parts.items()}
        self._check_shapes(dataset)
        self.num_frames = dataset.num_frames

    def _check_shapes(self, dataset: Dataset) -> None:
        size = dataset.image_size
        rgb = self.arrays.get("rgb")
        if rgb is not None and rgb.ndim != 4:
            raise DatasetError(f"rgb frames must be (T, C, H, W), got {rgb.shape[1:]}")
        for name in ("saliency", "depth"):
            array = self.arrays.get(name)
            if array is not None and (array.ndim != 3 or tuple(array.shape[1:]) != size):
                raise DatasetError(
                    f"field {name} must hold one (H, W) = {size} map a frame, got {array.shape[1:]}"
                )

    def batch(self, indices: np.ndarray, flip: np.ndarray) -> dict[str, torch.Tensor]:
        """Raw fields of frames ``indices`` as tensors, those with ``flip`` mirrored left-right."""
        out = {}
        for name, array in self.arrays.items():
            rows = array[indices]  # (B, ..., W)
            rows = np.where(flip.reshape(-1, *[1] * (rows.ndim - 1)), rows[..., ::-1], rows)
            tensor = torch.from_numpy(np.ascontiguousarray(rows))
            out[name] = tensor.float() if name == "depth" else tensor
        return out


def batch_indices(step: int, batch_size: int, num_frames: int, seed: int) -> np.ndarray:
    """Frames of step ``step``: the next ``batch_size`` of a stream of epoch permutations."""
    start = step * batch_size
    out = []
    while len(out) < batch_size:
        epoch, offset = divmod(start + len(out), num_frames)
        order = np.random.default_rng([seed, epoch]).permutation(num_frames)
        out.extend(order[offset : offset + batch_size - len(out)].tolist())
    return np.asarray(out, dtype=np.int64)


def batch_flips(step: int, batch_size: int, seed: int, probability: float) -> np.ndarray:
    """Which frames of step ``step`` are flipped: bool (batch_size,)."""
    return np.random.default_rng([seed, 1_000_003, step]).random(batch_size) < probability


# ---------------------------------------------------------------------- checkpoints
def checkpoint_dirs(out_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run as (step, directory), oldest first."""
    root = Path(out_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = STEP_DIR_PATTERN.match(path.name)
        if match and is_checkpoint(path):
            found.append((int(match.group(1)), path))
    return sorted(found)


def resume_state(step: int, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """What a resume needs besides the weights: the data order, the flips and the learning
    rate are functions of the step, the masks draw from torch's RNG."""
    state: dict[str, Any] = {
        "step": step,
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    return state


def restore_training_state(
    directory: Path, model: MultiMAE, optimizer: torch.optim.Optimizer
) -> int:
    """Restore weights, optimizer and RNG states from a checkpoint; return its step.

    A checkpoint of the first format (``saliency_rl.checkpoint`` reads it as this one) also
    holds Python's and NumPy's RNG states; nothing in the pretraining draws from them.
    """
    _, weights = load_checkpoint(directory, next(model.parameters()).device)
    model.load_state_dict(weights)
    state = load_training_state(directory)
    if state is None:
        raise PretrainError(f"cannot resume from {directory}: it has no training state")
    optimizer.load_state_dict(state["optimizer"])  # moves the moments to the model's device
    torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return int(state["step"])


# ---------------------------------------------------------------------- preview PNG
@torch.no_grad()
def save_reconstruction_png(
    model: MultiMAE,
    raw: Mapping[str, torch.Tensor],
    path: Path,
    seed: int = 0,
    fovy_degrees: float = 45.0,
    scale: int | None = None,
) -> Path:
    """Draw, per frame (rows) and modality, the masked input, the reconstruction (predicted
    patches where masked, input where visible) and the target; write a PNG.

    The masks are drawn from a forked RNG seeded with ``seed``, so the training RNG is untouched.
    Tiles are enlarged ``scale`` times (default: to at least 96 pixels wide).
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    raw = {k: v.to(device) for k, v in raw.items()}
    inputs = prepare_inputs(raw, model.config.modalities, fovy_degrees)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        output = model(inputs)
    model.train(was_training)
    p = model.config.patch_size
    columns, labels = [], []
    for m in model.config.modalities:
        image = inputs[m]  # (N, C, H, W)
        channels = image.shape[1]
        pred = output.preds[m]  # (N, L_m, p*p*C)
        if m == "rgb" and model.config.norm_pix_loss:
            # Undo the per-patch normalisation with the true patch statistics (as MAE's demo).
            target = model.patchify(image)
            pred = pred * (target.var(-1, keepdim=True) + 1e-6).sqrt() + target.mean(
                -1, keepdim=True
            )
        pred = model.unpatchify(pred, channels)  # (N, C, H, W)
        mask = output.masks[m].reshape(-1, 1, *model.config.grid).float()  # (N, 1, gh, gw)
        mask = mask.repeat_interleave(p, 2).repeat_interleave(p, 3)  # (N, 1, H, W)
        target_rgb = output_to_image(m, image)  # (N, 3, H, W) in [0, 1]
        masked_rgb = target_rgb * (1 - mask) + MASK_COLOUR.to(device) * mask
        recon_rgb = output_to_image(m, pred * mask + image * (1 - mask))
        columns += [masked_rgb, recon_rgb, target_rgb]
        labels += [f"{m} masked", f"{m} recon", f"{m} target"]
    n, _, height, width = columns[0].shape
    scale = scale or max(1, math.ceil(96 / width))
    tile_h, tile_w, header = height * scale, width * scale, 14
    sheet = Image.new("RGB", (len(columns) * (tile_w + 2), header + n * (tile_h + 2)), "white")
    draw = ImageDraw.Draw(sheet)
    for c, (column, label) in enumerate(zip(columns, labels, strict=True)):
        draw.text((c * (tile_w + 2) + 2, 1), label, fill="black")
        pixels = (column.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        for r in range(n):
            tile = Image.fromarray(pixels[r]).resize((tile_w, tile_h), Image.NEAREST)
            sheet.paste(tile, (c * (tile_w + 2), header + r * (tile_h + 2)))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, lambda handle: sheet.save(handle, format="PNG"))
    return path


# ---------------------------------------------------------------------- the loop
def pretrain_multimae(
    dataset: Dataset | str | Path,
    out_dir: str | Path,
    modalities: Sequence[str] = ("rgb", "saliency"),
    steps: int = 10_000,
    batch_size: int = 64,
    lr: float = 1e-4,
    warmup: int | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    resume: bool = False,
    progress: bool = True,
    *,
    model_size: str = "visarl",
    model_overrides: Mapping[str, Any] | None = None,
    checkpoint_every: int = 1000,
    keep_checkpoints: int = 2,
    stop_at: int | None = None,
    callback: Callable[[int, dict[str, float]], None] | None = None,
    **settings: Any,
) -> PretrainSummary:
    """Pretrain a MultiMAE (or, with one modality, an MAE) on a dataset's frames.

    Args:
        dataset: a Dataset or its directory; needs a field for every modality (``saliency``
            from ``saliency-rl label``; ``depth`` for depth and normals).
        out_dir: the run directory (see the module docstring); must be new or empty unless
            ``resume``.
        modalities: e.g. ("rgb", "saliency") for ViSaRL, ("rgb",) for MAE.
        steps: optimiser steps in total (the cosine schedule's length).
        batch_size: frames per step.
        lr: peak learning rate.
        warmup: warm-up steps (None: 5% of ``steps``).
        seed: seeds weights, data order, flips and masks.
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        resume: continue from the newest checkpoint in ``out_dir`` (a fresh start if it has
            none); the settings must match the stored ones except ``RESUMABLE_CHANGES``.
        progress: show a progress bar with the loss on stderr.
        model_size: ``visarl`` or ``tiny`` (``MODEL_SIZES``).
        model_overrides: MultiMAEConfig fields to change (mask_ratio, norm_pix_loss, ...).
        checkpoint_every: steps between checkpoints (and reconstruction PNGs).
        keep_checkpoints: newest checkpoints kept; 0 keeps all.
        stop_at: stop after this step, checkpointed, with the schedule of ``steps``.
        callback: called as ``callback(step, metrics)`` after every step.
        **settings: other ``PretrainConfig`` fields (min_lr, weight_decay, betas, hflip,
            fovy_degrees, preview_frames).

    Returns:
        A PretrainSummary. Interrupted (Ctrl-C), it writes a checkpoint of the steps done and
        re-raises KeyboardInterrupt.
    """
    unknown = sorted(set(settings) - {f.name for f in dataclasses.fields(PretrainConfig)})
    if unknown:
        raise PretrainError(f"unknown pretraining settings: {', '.join(unknown)}")
    config = PretrainConfig(
        modalities=tuple(modalities), model_size=model_size,
        model_overrides=dict(model_overrides or {}), steps=steps, batch_size=batch_size, lr=lr,
        warmup=warmup, seed=seed, checkpoint_every=checkpoint_every,
        keep_checkpoints=keep_checkpoints, stop_at=stop_at, **settings,
    )  # fmt: skip
    dataset = dataset if isinstance(dataset, Dataset) else Dataset.open(dataset)
    if config.fovy_degrees is None:
        fovy = dataset.meta.get("camera", {}).get("fovy_degrees", 45.0)
        config = dataclasses.replace(config, fovy_degrees=float(fovy))
    out_dir = Path(out_dir)
    device = resolve_device(device)
    check_fields(dataset, config.modalities)
    overrides = dict(config.model_overrides)
    if "rgb" in config.modalities and "channels" not in overrides:
        overrides["channels"] = {"rgb": int(dataset.fields["rgb"].shape[0])}
    model_config = multimae_config(
        config.model_size, config.modalities, image_size=dataset.image_size, **overrides
    )
    previous = _previous_checkpoint(out_dir, resume)
    data = PretrainData(dataset, config.modalities)
    torch.manual_seed(config.seed)
    model = MultiMAE(model_config).to(device)
    optimizer = _adamw(model, config)
    extra = {
        "pretrain": config.to_dict(),
        "dataset": {
            "path": str(dataset.root),
            "env_spec": dataset.env_spec,
            "num_frames": dataset.num_frames,
        },
        "package_version": __version__,
    }

    start = 0
    if previous is not None:
        _check_resumable(previous, config, dataset)
        start = restore_training_state(previous, model, optimizer)
    precision = _precision(config, previous, model, data, device)
    extra["precision"] = precision.to_json()
    end = config.stop_at or config.steps
    out_dir.mkdir(parents=True, exist_ok=True)
    losses = [f"loss_{m}" for m in model_config.modalities]
    run_log = RunLog(out_dir, ["step", "loss", *losses, "lr", "images_per_s"])
    if resume:
        run_log.rewind(start)  # rows a stopped run logged after its checkpoint come again
    preview_indices = np.linspace(0, data.num_frames - 1, config.preview_frames).round().astype(int)
    preview = data.batch(preview_indices, np.zeros(len(preview_indices), dtype=bool))

    def checkpoint(step: int) -> Path:
        path = model.save_pretrained(
            out_dir / CHECKPOINTS_DIR / f"step_{step:06d}",
            extra={**extra, "step": step},
            training_state=resume_state(step, optimizer),
        )
        save_reconstruction_png(
            model, preview, out_dir / RECONSTRUCTIONS_DIR / f"step_{step:06d}.png",
            seed=config.seed, fovy_degrees=config.fovy_degrees,
        )  # fmt: skip
        _prune(out_dir, config.keep_checkpoints)
        return path

    model.train()
    recent: list[dict[str, float]] = []
    train_time, images = 0.0, 0
    step = start
    # One metrics row a step; a checkpoint every checkpoint_every steps and at the end.
    cadence = Cadence(
        end, start, log_every=1, eval_every=0, checkpoint_every=config.checkpoint_every,
        desc="pretrain", progress=progress,
    )  # fmt: skip
    try:
        with cadence, run_log:
            while step < end:
                tick = time.perf_counter()
                rate = learning_rate(step, config)
                for group in optimizer.param_groups:
                    group["lr"] = rate
                indices = batch_indices(step, config.batch_size, data.num_frames, config.seed)
                flips = batch_flips(step, config.batch_size, config.seed, config.hflip)
                raw = {k: v.to(device) for k, v in data.batch(indices, flips).items()}
                inputs = prepare_inputs(raw, config.modalities, config.fovy_degrees)
                with autocast(precision.chosen, device):
                    output = model(inputs)
                optimizer.zero_grad(set_to_none=True)
                output.loss.float().backward()
                optimizer.step()
                loss = float(output.loss.detach())
                if not math.isfinite(loss):
                    raise PretrainError(
                        f"the loss became {loss} at step {step}: lower the learning rate (--lr)"
                    )
                step += 1
                elapsed = time.perf_counter() - tick
                train_time += elapsed
                images += config.batch_size
                row = {"loss": loss, **{m: float(v.detach()) for m, v in output.losses.items()}}
                recent = (recent + [row])[-50:]
                run_log.log(
                    {
                        "step": step,
                        "loss": loss,
                        **{f"loss_{m}": row[m] for m in model_config.modalities},
                        "lr": rate,
                        "images_per_s": config.batch_size / elapsed,
                    }
                )
                cadence.show(**{k: f"{v:.4f}" for k, v in row.items()})
                due = cadence.advance(step - 1, step)
                if callback is not None:
                    callback(step, row)
                if due.checkpoint:
                    checkpoint(step)
    except KeyboardInterrupt:
        if step > start and not (out_dir / CHECKPOINTS_DIR / f"step_{step:06d}").exists():
            checkpoint(step)
        raise

    latest = find_checkpoint(out_dir)
    if step == start and not (out_dir / RECONSTRUCTIONS_DIR / f"step_{step:06d}.png").exists():
        save_reconstruction_png(
            model, preview, out_dir / RECONSTRUCTIONS_DIR / f"step_{step:06d}.png",
            seed=config.seed, fovy_degrees=config.fovy_degrees,
        )  # fmt: skip
    means = {k: float(np.mean([r[k] for r in recent])) for k in (recent[0] if recent else {})}
    return PretrainSummary(
        out_dir=out_dir,
        checkpoint=latest,
        step=step,
        resumed_from=start if previous is not None else None,
        losses=means,
        images_per_second=images / train_time if train_time else 0.0,
        reconstruction_png=out_dir / RECONSTRUCTIONS_DIR / f"step_{step:06d}.png",
    )


def _precision(
    config: PretrainConfig,
    previous: Path | None,
    model: MultiMAE,
    data: PretrainData,
    device: torch.device,
) -> PrecisionChoice:
    """The run's precision: a resumed run's recorded one (so it resumes bit for bit), else
    ``config.precision``, ``auto`` timed on a copy of the model on the first batch. The
    timing draws its masks from a forked random stream: the run's own is untouched."""
    recorded = read_config(previous).get("precision") if previous is not None else None

    def make_trial() -> Callable[[], torch.Tensor]:
        indices = batch_indices(0, config.batch_size, data.num_frames, config.seed)
        raw = {
            k: v.to(device) for k, v in data.batch(indices, np.zeros(len(indices), bool)).items()
        }
        inputs = prepare_inputs(raw, config.modalities, config.fovy_degrees)
        return on_a_copy(model, lambda twin: twin(inputs).loss)

    name = (f"MultiMAE ({'+'.join(config.modalities)}, {config.model_size}) forward and "
            f"backward, batch {config.batch_size}, torch threads {torch.get_num_threads()}")  # fmt: skip
    return decide_precision(config.precision, device, make_trial, recorded=recorded,
                            trial_name=name)  # fmt: skip


def _adamw(model: MultiMAE, config: PretrainConfig) -> torch.optim.AdamW:
    skip = model.no_weight_decay()
    decay = [p for n, p in model.named_parameters() if n not in skip]
    no_decay = [p for n, p in model.named_parameters() if n in skip]
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.lr,
        betas=config.betas,
    )


def _previous_checkpoint(out_dir: Path, resume: bool) -> Path | None:
    found = checkpoint_dirs(out_dir)
    if resume:
        return found[-1][1] if found else None
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        if found:
            raise PretrainError(
                f"output directory {out_dir} holds a pretraining: pass --resume to continue "
                "it, or choose another --out"
            )
        raise PretrainError(
            f"output directory {out_dir} exists and is not empty: choose another --out "
            "(a new pretraining needs a new or empty folder)"
        )
    return None


def _check_resumable(previous: Path, config: PretrainConfig, dataset: Dataset) -> None:
    stored = read_config(previous)
    before = {"precision": "fp32", **stored.get("pretrain", {})}  # runs older than the option
    now = config.to_dict()
    changed = [
        f"{k}: {before.get(k)!r} -> {now[k]!r}"
        for k in now
        if k not in RESUMABLE_CHANGES and before.get(k) != now[k]
    ]
    if changed:
        raise PretrainError(
            f"cannot resume {previous.parent.parent}: settings differ from the run's "
            f"({'; '.join(changed)}); use the same settings or another --out"
        )
    frames = stored.get("dataset", {}).get("num_frames")
    if frames != dataset.num_frames:
        raise PretrainError(
            f"cannot resume {previous.parent.parent}: it was trained on {frames} frames, the "
            f"dataset has {dataset.num_frames} now; pretrain into another --out"
        )


def _prune(out_dir: Path, keep: int) -> None:
    if keep <= 0:
        return
    for _, path in checkpoint_dirs(out_dir)[:-keep]:
        shutil.rmtree(path, ignore_errors=True)
