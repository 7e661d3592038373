"""Frame pairs of Atari datasets, and the loop shared by the models pretrained on them: the
attention module (``pretrain-attention``) and the Transporter baseline
(``pretrain-transporter``).

A pair is a source and a target frame of one episode, 1 to ``max_gap`` steps apart; with
several datasets (several games) a batch draws from each equally often. Every frame of every
dataset is loaded into memory once (7 KiB a frame: 0.7 GB for 100k).

Both models draw (source, target) batches with ``sample_pair_batch``, take Adam
steps with gradients clipped to a global norm, log one row per ``log_every`` steps (each
metric the mean over those steps) to metrics.csv and TensorBoard (``run_log.RunLog``) and
save a checkpoint every ``checkpoint_every`` steps and at the end. The checkpoint holds the
weights, the provenance and a training state (optimizer, step, NumPy and torch RNG states,
the rows so far and the metrics since the last row), so ``--resume`` continues bit for bit:
the resumed run's weights and rows equal those of a run that was never stopped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from saliency_rl import __version__
from saliency_rl.checkpoint import is_checkpoint, load_checkpoint, load_training_state
from saliency_rl.data.dataset import Dataset
from saliency_rl.devices import resolve_device
from saliency_rl.envs.spec import parse_spec
from saliency_rl.errors import DatasetError
from saliency_rl.precision import (
    PrecisionChoice,
    autocast,
    check_precision,
    decide_precision,
    on_a_copy,
)
from saliency_rl.run_log import Averages, Cadence, RunLog
from saliency_rl.runs import RunError, check_settings, now


@dataclasses.dataclass
class PairPretrainConfig:
    """The settings every pretraining on frame pairs has; each model's config adds its own."""

    steps: int = 10_000
    """Optimizer steps (the papers give no number; 10k batches of 32 pairs is ours)."""
    batch_size: int = 32
    """Frame pairs per step."""
    learning_rate: float = 1e-3
    """Adam learning rate."""
    max_grad_norm: float = 0.5
    """Gradients are clipped to this global L2 norm."""
    max_gap: int = 59
    """A pair's frames are 1 to max_gap steps apart in one episode (official buffer: 60)."""
    seed: int = 0
    """Seeds the initial weights and the pairs."""
    log_every: int = 100
    """Steps between rows of metrics.csv."""
    checkpoint_every: int = 1_000
    """Steps between saves of the checkpoint (and at the end)."""
    precision: str = "fp32"
    """fp32, bf16 (the model under bf16 autocast, the loss in fp32) or auto (the faster,
    timed on a copy of the model at start; saliency_rl.precision). The choice is stored in
    the checkpoint's provenance ("precision") and kept on resume."""

    def validate(self) -> PairPretrainConfig:
        check_settings(
            self,
            positive=("steps", "batch_size", "max_gap", "log_every", "checkpoint_every",
                      "learning_rate", *self.positive_fields()),
            non_negative=("max_grad_norm", "seed", *self.non_negative_fields()),
        )  # fmt: skip
        check_precision(self.precision)
        return self

    def positive_fields(self) -> tuple[str, ...]:
        """A model's own settings that must be > 0."""
        return ()

    def non_negative_fields(self) -> tuple[str, ...]:
        """A model's own settings that must be >= 0."""
        return ()


@dataclasses.dataclass(frozen=True)
class PairModel:
    """What a model pretrained on frame pairs brings to the shared loop."""

    name: str
    """The command and progress-bar label, e.g. ``pretrain-attention``."""
    what: str
    """The model in error messages, e.g. ``attention module``."""
    atari_only: bool
    config: type[PairPretrainConfig]
    """Only Atari grey 84x84 frames (Transporter), or any suite's (the attention module)."""
    build: Callable[[Any, tuple[int, ...], torch.device], nn.Module]
    """``build(config, frame_shape, device)``: the freshly initialised model (after the seed
    is set) for frames (C, H, W)."""
    loss: Callable[[Any, Any], Callable[[torch.Tensor, torch.Tensor], Any]]
    """``loss(model, config)``: ``loss_fn(source, target) -> (loss, metrics)``."""
    columns: tuple[str, ...]
    """metrics.csv's columns."""
    loss_key: str
    """The metric in the progress bar and the provenance's ``final_loss``."""
    save: Callable[[nn.Module, Path, dict[str, Any], dict[str, Any]], Any]
    """``save(model, out_dir, provenance, training_state)``: the checkpoint writer."""


def pretrain_on_pairs(
    model: PairModel,
    datasets: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    steps: int | None = None,
    *,
    config: PairPretrainConfig | None = None,
    resume: bool = False,
    device: str | torch.device = "auto",
    progress: bool = True,
) -> Path:
    """Pretrain ``model`` on the frame pairs of ``datasets``; returns ``out_dir``.

    Args:
        model: what is trained (``attention_pretrain.ATTENTION``, ``transporter_pretrain.TRANSPORTER``).
        datasets: one Atari dataset directory, or several (``universal``: several games).
        out_dir: the checkpoint directory (new or empty; with ``resume``, an earlier one).
        steps: optimizer steps in all; overrides ``config.steps`` (on resume: trains on to it).
        config: the other settings (default ``model.config()``); on resume the saved
            settings are used instead.
        resume: continue the checkpoint in ``out_dir`` from its last save, bit for bit.
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        progress: show a progress bar on stderr.

    Raises:
        DatasetError: a dataset is missing, not Atari grey 84x84, or has no frame pairs.
        RunError: a bad setting, ``out_dir`` not empty (without resume) or no checkpoint in it.
    """
    run = start_pair_run(
        datasets, out_dir, steps, config or model.config(), resume=resume, device=device,
        what=model.what, atari_only=model.atari_only,
    )  # fmt: skip
    torch.manual_seed(run.config.seed)
    network = model.build(run.config, run.frames[0].frames.shape[1:], run.device)
    precision = _precision(model, run, network)
    run.provenance["precision"] = precision.to_json()
    return train_on_pairs(
        run,
        network,
        model.loss(network, run.config),
        precision=precision.chosen,
        columns=model.columns,
        loss_key=model.loss_key,
        save=model.save,
        name=model.name,
        progress=progress,
    )


def _precision(model: PairModel, run: PairRun, network: nn.Module) -> PrecisionChoice:
    """A resumed run's recorded precision, else the config's; ``auto`` is timed on a copy of
    the network on one batch drawn from a generator of its own, under a forked torch
    stream, so the run's weights and random streams are those of a run without the trial."""
    c = run.config

    def make_trial() -> Callable[[], torch.Tensor]:
        batch = sample_pair_batch(run.frames, c.batch_size, np.random.default_rng(0), run.device)
        return on_a_copy(network, lambda twin: model.loss(twin, c)(*batch)[0])

    name = f"{model.what} forward and backward, batch {c.batch_size} pairs"
    return decide_precision(c.precision, run.device, make_trial,
                            recorded=run.recorded_precision, trial_name=name)  # fmt: skip


class FramePairs:
    """The frames of one dataset, episodes concatenated: (F, C, H, W) uint8."""

    def __init__(self, dataset: Dataset, max_gap: int) -> None:
        episodes = [dataset.episode(i, ["rgb"])["rgb"] for i in range(dataset.num_episodes)]
        lengths = np.array([len(e) for e in episodes], np.int64)
        usable = np.flatnonzero(lengths >= 2)
        if len(usable) == 0:
            raise DatasetError(
                f"dataset {dataset.root} has no episode of 2 frames or more: no frame pairs; "
                "collect more frames"
            )
        self.frames = np.concatenate([episodes[i] for i in usable])
        self.lengths = lengths[usable]
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        self.max_gap = max_gap

    def sample(self, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(source, target) global frame indices, each (count,), same episode, 1..max_gap apart."""
        # Every target frame is equally likely: episodes drawn in proportion to their length.
        episode = rng.choice(len(self.lengths), size=count, p=self.lengths / self.lengths.sum())
        length = self.lengths[episode]
        target = np.floor(rng.random(count) * length).astype(np.int64)
        low = np.maximum(0, target - self.max_gap)
        high = np.minimum(length - 1, target + self.max_gap)
        source = low + np.floor(rng.random(count) * (high - low)).astype(np.int64)  # < high
        source += source >= target  # skip the target itself
        start = self.starts[episode]
        return start + source, start + target


def open_pair_dataset(path: str | Path, atari_only: bool) -> tuple[Dataset, str]:
    """A dataset to draw frame pairs from, and its game (Atari) or task name."""
    dataset = Dataset.open(path)
    spec = parse_spec(dataset.env_spec)
    rgb = dataset.fields["rgb"]
    if atari_only and spec.suite != "atari":
        raise DatasetError(
            f"dataset {path} holds {dataset.env_spec} frames; this model is trained on Atari "
            "frames (collect --env atari:<Game>)"
        )
    if spec.suite == "atari" and (rgb.dtype != "uint8" or tuple(rgb.shape) != (1, 84, 84)):
        raise DatasetError(
            f"dataset {path} stores frames {rgb.dtype} {tuple(rgb.shape)}; on Atari the "
            "attention module needs grey 84x84 frames, uint8 (1, 84, 84) (collect's default)"
        )
    if spec.suite != "atari":
        return dataset, spec.name
    from saliency_rl.envs.atari_vector import atari_game

    return dataset, atari_game(dataset.env_spec)


def open_frame_pairs(
    paths: Sequence[str | Path], max_gap: int, atari_only: bool = True
) -> tuple[list[FramePairs], list[str], list[dict[str, Any]]]:
    """Open datasets for pair sampling: their FramePairs, the games or tasks (each once, in
    order) and one provenance record per dataset (path, spec, game, sizes, policies). All
    must store frames of one shape."""
    opened = [open_pair_dataset(p, atari_only) for p in paths]
    shapes = {tuple(d.fields["rgb"].shape) for d, _ in opened}
    if len(shapes) > 1:
        raise DatasetError(
            f"the datasets store frames of different shapes {sorted(shapes)}: pretrain on "
            "datasets of one frame size and colour"
        )
    records = [
        {
            "path": str(Path(dataset.root).resolve()),
            "env_spec": dataset.env_spec,
            "game": game,
            "episodes": dataset.num_episodes,
            "frames": dataset.num_frames,
            "policies": sorted(
                {c.get("policy", "?") for c in dataset.meta["provenance"]["collections"]}
            ),
        }
        for dataset, game in opened
    ]
    frames = [FramePairs(dataset, max_gap) for dataset, _ in opened]
    return frames, list(dict.fromkeys(game for _, game in opened)), records


def sample_pair_batch(
    frames: list[FramePairs], batch_size: int, rng: np.random.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(source, target) uint8 (B, C, H, W): datasets equally often, then pairs in each."""
    which = rng.integers(len(frames), size=batch_size)
    sources, targets = [], []
    for i, data in enumerate(frames):
        count = int((which == i).sum())
        if count:
            s, t = data.sample(count, rng)
            sources.append(data.frames[s])
            targets.append(data.frames[t])
    source = torch.from_numpy(np.concatenate(sources)).to(device)
    target = torch.from_numpy(np.concatenate(targets)).to(device)
    return source, target


@dataclasses.dataclass
class PairRun:
    """A pretraining about to start or continue: settings, data, where it is saved."""

    config: Any
    """The settings: a dataclass with ``validate()`` and at least ``steps``, ``batch_size``,
    ``learning_rate``, ``max_grad_norm``, ``max_gap``, ``seed``, ``log_every`` and
    ``checkpoint_every`` (AttentionPretrainConfig, TransporterPretrainConfig)."""
    out_dir: Path
    device: torch.device
    frames: list[FramePairs]
    games: list[str]
    provenance: dict[str, Any]
    """Stored in every checkpoint: games, datasets, settings, device, version, created."""
    weights: dict[str, torch.Tensor] | None = None
    """On resume: the weights and the training state of the last save."""
    state: dict[str, Any] | None = None
    recorded_precision: dict[str, Any] | None = None
    """On resume: the precision the run chose (``PrecisionChoice.to_json``)."""


def start_pair_run(
    datasets: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    steps: int | None,
    config: Any,
    *,
    resume: bool,
    device: str | torch.device,
    what: str,
    atari_only: bool = True,
) -> PairRun:
    """Check the settings and ``out_dir``, open the datasets' frame pairs.

    ``config`` is the default settings' dataclass instance (copied; ``steps`` overrides its
    ``steps``). With ``resume`` the settings saved in ``out_dir``'s checkpoint are used
    instead (``steps`` still overriding), and its weights and training state come back.

    Raises:
        RunError: a bad setting, no dataset, ``out_dir`` not empty (without resume) or
            without a checkpoint and training state (with resume).
        DatasetError: a dataset is missing, not Atari grey 84x84, or has no frame pairs.
    """
    config = dataclasses.replace(config)
    if steps is not None:
        config.steps = steps
    config.validate()
    paths = [datasets] if isinstance(datasets, str | Path) else list(datasets)
    if not paths:
        raise RunError(f"give at least one dataset to train the {what} on")
    out_dir = Path(out_dir)
    torch_device = resolve_device(device)
    weights = state = recorded = None
    if resume:
        if not is_checkpoint(out_dir):
            raise RunError(f"{out_dir} holds no {what} checkpoint to resume")
        saved, weights = load_checkpoint(out_dir, torch_device)
        state = load_training_state(out_dir, "cpu")
        if state is None:
            raise RunError(f"{out_dir} has no training state: it cannot be resumed")
        config = type(config)(**saved["provenance"]["pretraining"])
        recorded = saved["provenance"].get("precision")
        if steps is not None:
            config.steps = steps
        config.validate()
    elif out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise RunError(f"{out_dir} exists and is not empty: choose another --out, or --resume")
    frames, games, records = open_frame_pairs(paths, config.max_gap, atari_only)
    provenance: dict[str, Any] = {
        "games": games,
        "datasets": records,
        "pretraining": dataclasses.asdict(config),
        "device": str(torch_device),
        "package_version": __version__,
        "created": state["created"] if state is not None else now(),
    }
    return PairRun(
        config, out_dir, torch_device, frames, games, provenance, weights, state, recorded
    )


def train_on_pairs(
    run: PairRun,
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict[str, float]]],
    *,
    columns: tuple[str, ...],
    loss_key: str,
    save: Callable[[nn.Module, Path, dict[str, Any], dict[str, Any]], Any],
    name: str,
    progress: bool,
    precision: str = "fp32",
) -> Path:
    """Train ``model`` on ``loss_fn(source, target) -> (loss, metrics)`` to the run's steps,
    the forward under ``precision``'s autocast; returns its ``out_dir``.

    ``run.provenance`` is stored in every checkpoint with ``steps`` and ``final_loss`` (the
    last row's ``loss_key``) added; ``save(model, out_dir, provenance, training_state)``
    writes the checkpoint, which replaces ``out_dir`` whole, and metrics.csv (``columns``) and
    tb/ are written back beside it. ``name`` labels the progress bar.
    """
    config, out_dir, device, provenance = run.config, run.out_dir, run.device, run.provenance
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    rng = np.random.default_rng(config.seed)
    rows: list[dict[str, Any]] = []
    pending = Averages()  # metrics since the last row
    start = 0
    if run.state is not None and run.weights is not None:
        model.load_state_dict(run.weights)
        optimizer.load_state_dict(run.state["optimizer"])
        rng.bit_generator.state = run.state["rng"]
        torch.set_rng_state(run.state["torch_rng"])
        pending.load(run.state.get("pending", {}))  # older checkpoints saved at a row
        rows, start = run.state["rows"], int(run.state["step"])
    out_dir.mkdir(parents=True, exist_ok=True)
    model.train()
    cadence = Cadence(
        config.steps, start, log_every=config.log_every, eval_every=0,
        checkpoint_every=config.checkpoint_every, desc=f"{name} {'+'.join(run.games)}",
        progress=progress,
    )  # fmt: skip
    with cadence:
        for step in range(start + 1, config.steps + 1):
            source, target = sample_pair_batch(run.frames, config.batch_size, rng, device)
            with autocast(precision, device):
                loss, metrics = loss_fn(source, target)
            optimizer.zero_grad(set_to_none=True)
            loss.float().backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            pending.add(metrics)
            due = cadence.advance(step - 1, step)
            if due.log:
                row = {k: v for k, v in pending.means().items() if k in columns}
                pairs_per_s = config.batch_size * cadence.speed(step)
                rows.append({**row, "step": step, "time": now(), "pairs_per_s": pairs_per_s})
                cadence.show(loss=f"{row[loss_key]:.4f}")
            if due.checkpoint:
                provenance["steps"] = step
                provenance["final_loss"] = rows[-1][loss_key] if rows else None
                training_state = {
                    "optimizer": optimizer.state_dict(),
                    "rng": rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(),
                    "rows": rows,
                    "pending": pending.state(),
                    "step": step,
                    "created": provenance["created"],
                }
                if out_dir.exists() and any(out_dir.iterdir()) and not is_checkpoint(out_dir):
                    raise RunError(
                        f"{out_dir} was changed by someone else during pretraining; stopping"
                    )
                model.eval()  # batch-norm statistics are saved as they are; eval changes none
                save(model, out_dir, provenance, training_state)
                model.train()
                # The save replaced out_dir, its metrics with it: they come from the state.
                with RunLog(out_dir, columns) as log:
                    for row in rows:
                        log.log(row)
    return out_dir


__all__ = [
    "FramePairs",
    "PairModel",
    "PairPretrainConfig",
    "PairRun",
    "open_frame_pairs",
    "pretrain_on_pairs",
    "sample_pair_batch",
    "start_pair_run",
    "train_on_pairs",
]
