"""How much of the state do frozen features carry? Ridge and MLP probes, held-out episodes.

``probe(dataset, encoder)`` computes an encoder's features for every frame of a dataset,
fits probes from them to what the dataset knows about the state (``proprio``: DMC's
positions and velocities, Meta-World's hand, gripper and object; the oracle
``salient_points``, in pixels), and reports R² per quantity on episodes the probes never saw.

- Split by episode: the last ``test_fraction`` of the episodes are the test set, the ones
  before them the validation set (ridge's alpha, the MLP's early stop), the rest the fit.
  Collected episodes are seeded seed+i, so held-out episodes are other seeds' start states;
  a frame of a held-out episode is never fitted on.
- Ridge: standardised features, closed form through one eigendecomposition, alpha from a grid by
  validation error. MLP: 2 x 256 ReLU, Adam, early-stopped on the validation episodes.
  Targets are standardised on the fit episodes; R² = 1 - SSE / SST on the test episodes
  (SST about the test mean), so predicting the training mean scores <= 0.
- Views: ``newest`` (the newest frame's features) and ``stack`` (the features of the last
  ``frame_stack`` frames, the first frame of an episode repeated as ``FrameStack`` does);
  the pole angle is in one frame, velocities only in a stack. A SAC CNN reads a whole stack,
  so it has the ``stack`` view only.

Encoders (``--encoder``; :func:`load_encoder`):

- ``pixels[:S]``: the frame area-downsampled to S x S (default 16), RGB: the baseline any
  encoder must beat.
- ``multimae:DIR[:MODE]``: a MultiMAE / MAE pretraining run or checkpoint, in one of its
  modes (rgb, rgb+saliency-pretrain-only, rgb+saliency: maps from the dataset's
  ``saliency`` field), ViSaRL's readout (mean of the patch tokens).
- ``multimae-random:DIR[:MODE]``: the same architecture with freshly initialised weights.
- ``...@READOUT`` after a MultiMAE spec: ``mean`` (ViSaRL's, the default), ``global`` (the
  global token) or ``gridR`` (patch tokens pooled over an R x R grid: where things are).
- ``sac:RUN``: the CNN a SAC run's critic trained (``--encoder cnn`` runs), on the run's own
  frame stack; ``sac-random:RUN`` the same CNN freshly initialised.
- ``attention:CKPT[@P]``: the self-supervised attention module of ``pretrain-attention``
  (Wu et al.), what its policy reads: the features Φ(frame) multiplied by the mask Ψ(frame),
  average-pooled to P x P cells (default 8, or the mask grid if coarser: 32 channels x 64
  cells) so a probe fits them in seconds; ``attention-random:CKPT[@P]`` the same module
  freshly initialised.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from saliency_rl.data.atomic import atomic_write_text
from saliency_rl.data.dataset import Dataset
from saliency_rl.errors import DatasetError, SaliencyRLError

RIDGE_ALPHAS = tuple(10.0**p for p in range(-3, 7))
"""Ridge penalties tried (on standardised features), chosen by validation error."""
MLP_HIDDEN = 256
MLP_MAX_EPOCHS = 300
MLP_PATIENCE = 20
"""Epochs without a better validation loss before the MLP stops (its best weights kept)."""
TARGET_FIELDS = ("proprio", "salient_points")


@dataclasses.dataclass(frozen=True)
class ProbeEncoder:
    """Frames -> features, per frame or per stack."""

    name: str
    """As given to --encoder; names the report."""
    per_frame: Callable[[np.ndarray, dict[str, np.ndarray]], np.ndarray] | None
    """``(frames uint8 (T, C, H, W), episode fields) -> (T, D)``; None: stacks only."""
    per_stack: Callable[[np.ndarray, dict[str, np.ndarray]], np.ndarray] | None = None
    """``(stacks uint8 (T, k*C, H, W), episode fields (T, ...)) -> (T, D)``; None: per-frame
    features concatenated over the stack."""
    frame_stack: int | None = None
    """The stack the encoder reads (a SAC run's), or None: the probe's ``frame_stack``."""
    fields: tuple[str, ...] = ()
    """Dataset fields the encoder reads besides ``rgb`` (``saliency``)."""


# ---------------------------------------------------------------------- the probes
def split_episodes(
    count: int, test_fraction: float = 0.25, val_fraction: float = 0.15
) -> tuple[list[int], list[int], list[int]]:
    """(fit, validation, test) episode indices: test the last, validation the ones before."""
    if count < 3:
        raise DatasetError(
            f"the probe needs at least 3 episodes (fit, validation, test), the dataset has "
            f"{count}: collect more episodes"
        )
    test = max(1, round(count * test_fraction))
    val = max(1, round(count * val_fraction))
    fit = count - test - val
    if fit < 1:
        fit, val = 1, count - test - 1
    episodes = list(range(count))
    return episodes[:fit], episodes[fit : fit + val], episodes[fit + val :]


def r2_scores(target: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """R² per column; NaN where the target does not vary."""
    sse = ((target - predicted) ** 2).sum(axis=0)
    sst = ((target - target.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sst > 1e-12 * len(target), 1.0 - sse / sst, np.nan)


def _standardise(x: np.ndarray, fit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale per column on the fit rows. The scale has a floor, a tenth of the
    columns' mean spread: a pixel nearly constant on the fit episodes must not blow up to
    huge values where it changes on held-out ones."""
    mean, std = x[fit].mean(axis=0), x[fit].std(axis=0)
    floor = max(0.1 * float(std.mean()), 1e-8)
    return mean, np.maximum(std, floor)


def fit_ridge(
    x: np.ndarray, y: np.ndarray, fit: np.ndarray, val: np.ndarray, test: np.ndarray
) -> tuple[np.ndarray, float]:
    """Ridge from standardised ``x`` to standardised ``y`` (rows ``fit``), alpha chosen on
    rows ``val``; returns (R² per column on rows ``test``, alpha)."""
    xm, xs = _standardise(x, fit)
    ym, ys = _standardise(y, fit)
    xf, yf = (x[fit] - xm) / xs, (y[fit] - ym) / ys
    # One eigendecomposition of the smaller Gram matrix serves every alpha (faster than an
    # SVD on 2 cores: 3,000 frames x 2,304 pixel features in about 2 s).
    if len(xf) <= xf.shape[1]:
        eigenvalues, u = np.linalg.eigh(xf @ xf.T)  # (n, n)
        uty = u.T @ yf

        def weights_for(alpha: float) -> np.ndarray:
            return xf.T @ (u @ (uty / (eigenvalues + alpha)[:, None]))

    else:
        eigenvalues, v = np.linalg.eigh(xf.T @ xf)  # (D, D)
        vtxy = v.T @ (xf.T @ yf)

        def weights_for(alpha: float) -> np.ndarray:
            return v @ (vtxy / (eigenvalues + alpha)[:, None])

    def predict(rows: np.ndarray, alpha: float) -> np.ndarray:
        return ((x[rows] - xm) / xs) @ weights_for(alpha) * ys + ym

    errors = [((predict(val, a) - y[val]) / ys) ** 2 for a in RIDGE_ALPHAS]
    alpha = RIDGE_ALPHAS[int(np.argmin([e.mean() for e in errors]))]
    return r2_scores(y[test], predict(test, alpha)), alpha


def fit_mlp(
    x: np.ndarray,
    y: np.ndarray,
    fit: np.ndarray,
    val: np.ndarray,
    test: np.ndarray,
    *,
    seed: int = 0,
    batch_size: int = 256,
    lr: float = 1e-3,
) -> tuple[np.ndarray, int]:
    """A 2 x 256 ReLU MLP on standardised features and targets, early-stopped on rows
    ``val``; returns (R² per column on rows ``test``, epochs of the best weights)."""
    import torch
    from torch import nn

    xm, xs = _standardise(x, fit)
    ym, ys = _standardise(y, fit)
    xt = torch.from_numpy(((x - xm) / xs).astype(np.float32))
    yt = torch.from_numpy(((y - ym) / ys).astype(np.float32))
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Linear(x.shape[1], MLP_HIDDEN), nn.ReLU(),
        nn.Linear(MLP_HIDDEN, MLP_HIDDEN), nn.ReLU(),
        nn.Linear(MLP_HIDDEN, y.shape[1]),
    )  # fmt: skip
    optimizer = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-4)
    fit_t, val_t = torch.from_numpy(fit), torch.from_numpy(val)
    best, best_epoch, best_state = float("inf"), 0, None
    for epoch in range(1, MLP_MAX_EPOCHS + 1):
        net.train()
        order = fit_t[torch.randperm(len(fit_t), generator=generator)]
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            loss = ((net(xt[rows]) - yt[rows]) ** 2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        net.eval()
        with torch.no_grad():
            val_loss = float(((net(xt[val_t]) - yt[val_t]) ** 2).mean())
        if val_loss < best - 1e-6:
            best, best_epoch = val_loss, epoch
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
        elif epoch - best_epoch >= MLP_PATIENCE:
            break
    assert best_state is not None
    net.load_state_dict(best_state)
    with torch.no_grad():
        predicted = net(xt[torch.from_numpy(test)]).numpy() * ys + ym
    return r2_scores(y[test], predicted), best_epoch


def fit_probes(
    features: np.ndarray,
    targets: np.ndarray,
    names: Sequence[str],
    episode_of_row: np.ndarray,
    split: tuple[Sequence[int], Sequence[int], Sequence[int]],
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """Ridge and MLP probes from ``features`` (N, D) to ``targets`` (N, Q), rows of the
    split's fit episodes fitted, its validation episodes choosing, its test episodes scored.

    Returns ``{"ridge": {name: R²}, "mlp": {name: R²}, "ridge_mean", "mlp_mean",
    "ridge_alpha", "mlp_epochs"}``; a quantity constant on the test episodes scores None and
    is left out of the means.
    """
    if len(names) != targets.shape[1]:
        raise ValueError(f"{len(names)} names for {targets.shape[1]} target columns")
    rows = [np.flatnonzero(np.isin(episode_of_row, list(part))) for part in split]
    ridge, alpha = fit_ridge(features, targets, *rows)
    mlp, epochs = fit_mlp(features, targets, *rows, seed=seed)

    def named(scores: np.ndarray) -> dict[str, float | None]:
        return {
            n: None if np.isnan(v) else round(float(v), 4)
            for n, v in zip(names, scores, strict=True)
        }

    def mean(scores: np.ndarray) -> float | None:
        return None if np.all(np.isnan(scores)) else round(float(np.nanmean(scores)), 4)

    return {
        "ridge": named(ridge),
        "mlp": named(mlp),
        "ridge_mean": mean(ridge),
        "mlp_mean": mean(mlp),
        "ridge_alpha": alpha,
        "mlp_epochs": epochs,
    }


# ---------------------------------------------------------------------- the dataset side
def stack_rows(values: np.ndarray, k: int) -> np.ndarray:
    """(T, ...) per-frame values -> (T, k, ...): the last k frames at every step, the first
    frame repeated before the episode's start (as ``FrameStack`` after a reset)."""
    index = np.arange(len(values))[:, None] + np.arange(1 - k, 1)[None, :]
    return values[np.maximum(index, 0)]


def target_names(dataset: Dataset) -> list[str]:
    """Names of the probed quantities: ``proprio`` by the suite's observation keys where the
    env says them (``position[0]``, ``velocity[1]``...), then ``salient_points`` as
    ``<body>.x``, ``<body>.y``."""
    names = []
    fields = dataset.fields
    if "proprio" in fields and np.prod(fields["proprio"].shape) > 0:
        size = int(np.prod(dataset.fields["proprio"].shape))
        names += _proprio_names(dataset, size)
    if "salient_points" in fields and np.prod(fields["salient_points"].shape) > 0:
        bodies = dataset.meta.get("salient_point_names") or []
        count = int(dataset.fields["salient_points"].shape[0])
        bodies = list(bodies) if len(bodies) == count else [f"point{i}" for i in range(count)]
        names += [f"{body}.{axis}" for body in bodies for axis in "xy"]
    return names


def _proprio_names(dataset: Dataset, size: int) -> list[str]:
    names = _dmc_observation_names(dataset.env_spec)
    return list(names) if len(names) == size else [f"proprio[{i}]" for i in range(size)]


@functools.cache
def _dmc_observation_names(env_spec: str) -> tuple[str, ...]:
    """DMC's observation keys, one name per number (an env is built once per spec: probing
    several encoders of one dataset asks again); () for other suites."""
    from saliency_rl.envs.spec import parse_spec

    if parse_spec(env_spec).suite != "dmc":
        return ()
    from saliency_rl.envs import make_env

    env = make_env(env_spec, image_size=16)
    try:
        spec = env.unwrapped._env.observation_spec()
    finally:
        env.close()
    return tuple(
        f"{key}[{i}]" if int(np.prod(value.shape)) > 1 else key
        for key, value in spec.items()
        for i in range(max(1, int(np.prod(value.shape))))
    )


def probe(
    dataset: Dataset | str | Path,
    encoder: ProbeEncoder,
    *,
    frame_stack: int = 3,
    test_fraction: float = 0.25,
    val_fraction: float = 0.15,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Probe ``encoder``'s features of ``dataset``'s frames for the state (see the module).

    Returns the report: encoder, dataset, episodes of each split, frames, quantity names,
    per view (``newest``, ``stack``) the :func:`fit_probes` scores, and seconds spent
    encoding and fitting.

    Raises:
        DatasetError: fewer than 3 episodes, or no ``proprio`` / ``salient_points`` to probe.
        ModelError: the encoder does not fit the frames (size, channels).
    """
    from tqdm import tqdm

    dataset = dataset if isinstance(dataset, Dataset) else Dataset.open(dataset)
    quantities = [  # Atari datasets have salient_points of shape (0, 2): nothing to probe
        f for f in TARGET_FIELDS if f in dataset.fields and np.prod(dataset.fields[f].shape) > 0
    ]
    if not quantities:
        raise DatasetError(
            f"dataset {dataset.root} has no proprio and no salient_points field: nothing to "
            "probe for (collect from dmc:, metaworld: or fake: tasks)"
        )
    missing = [f for f in encoder.fields if f not in dataset.fields]
    if missing:
        raise DatasetError(
            f"encoder {encoder.name} reads the dataset's {', '.join(missing)} field, which "
            f"{dataset.root} lacks (saliency-rl label DIR --predictor ... writes saliency)"
        )
    if frame_stack < 1:
        raise SaliencyRLError(f"frame_stack must be >= 1, got {frame_stack}")
    k = encoder.frame_stack or frame_stack
    split = split_episodes(dataset.num_episodes, test_fraction, val_fraction)
    names = target_names(dataset)
    started = time.perf_counter()
    views: dict[str, list[np.ndarray]] = {"newest": [], "stack": []}
    targets, episode_of_row = [], []
    episodes = range(dataset.num_episodes)
    for e in tqdm(episodes, desc=f"probe {encoder.name}", disable=not progress, unit="episode"):
        data = dataset.episode(e, ["rgb", *quantities, *encoder.fields])
        rgb = data["rgb"]
        if encoder.per_frame is not None:
            per_frame = encoder.per_frame(rgb, data)
            views["newest"].append(per_frame)
            if encoder.per_stack is None:
                views["stack"].append(stack_rows(per_frame, k).reshape(len(rgb), -1))
        if encoder.per_stack is not None:
            stacks = stack_rows(rgb, k).reshape(len(rgb), -1, *rgb.shape[2:])
            views["stack"].append(encoder.per_stack(stacks, data))
        row = [data[f].reshape(len(rgb), -1).astype(np.float64) for f in quantities]
        targets.append(np.concatenate(row, axis=1))
        episode_of_row.append(np.full(len(rgb), e))
    encode_seconds = time.perf_counter() - started
    y = np.concatenate(targets)
    episode_of_row = np.concatenate(episode_of_row)
    results = {}
    for view, parts in views.items():
        if parts:
            x = np.concatenate(parts).astype(np.float64)
            results[view] = {"feature_dim": int(x.shape[1])}
            results[view] |= fit_probes(x, y, names, episode_of_row, split, seed=seed)
    return {
        "encoder": encoder.name,
        "dataset": str(Path(dataset.root).resolve()),
        "env_spec": dataset.env_spec,
        "frame_stack": k,
        "episodes": {"fit": split[0], "validation": split[1], "test": split[2]},
        "frames": int(len(y)),
        "quantities": names,
        "views": results,
        "seconds": {
            "encode": round(encode_seconds, 2),
            "fit": round(time.perf_counter() - started - encode_seconds, 2),
        },
    }


def probe_table(report: dict[str, Any]) -> str:
    """The report as a Markdown table: a row per quantity, a column per view and probe."""
    columns = [(v, p) for v in report["views"] for p in ("ridge", "mlp")]
    header = "| quantity | " + " | ".join(f"{v} {p}" for v, p in columns) + " |"
    lines = [header, "|" + "---|" * (len(columns) + 1)]

    def cell(value: float | None) -> str:
        return "constant" if value is None else f"{value:.3f}"

    for name in report["quantities"]:
        cells = [cell(report["views"][v][p][name]) for v, p in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    means = [cell(report["views"][v][f"{p}_mean"]) for v, p in columns]
    lines.append("| **mean** | " + " | ".join(means) + " |")
    return "\n".join(lines)


SUMMARY_COLUMNS = ("newest ridge", "newest mlp", "stack ridge", "stack mlp")


def probe_summary(report: dict[str, Any]) -> list[str]:
    """One report's row of the summary table: the mean held-out R² of each view and probe
    (``SUMMARY_COLUMNS``), "–" where the encoder has no such view."""
    cells = []
    for column in SUMMARY_COLUMNS:
        view, kind = column.split()
        value = report.get("views", {}).get(view, {}).get(f"{kind}_mean")
        cells.append("–" if value is None else f"{value:.3f}")
    return cells


def write_probe(report: dict[str, Any], out: str | Path) -> Path:
    """Write OUT/probe.json and OUT/probe.md (atomically); returns OUT."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "probe.json", json.dumps(report, indent=2) + "\n")
    title = f"# Probe: {report['encoder']} on {report['env_spec']}\n\n"
    split = report["episodes"]
    intro = (
        f"Held-out R² on {len(split['test'])} test episodes ({report['frames']} frames in "
        f"all; fit on {len(split['fit'])} episodes, {len(split['validation'])} validation); "
        f"stack = {report['frame_stack']} frames.\n\n"
    )
    atomic_write_text(out / "probe.md", title + intro + probe_table(report) + "\n")
    return out


# ---------------------------------------------------------------------- encoders
def load_encoder(spec: str, device: Any = "cpu") -> ProbeEncoder:
    """An encoder from its ``--encoder`` spec (see the module docstring).

    Raises:
        SaliencyRLError: an unknown kind or a malformed spec, naming the valid ones.
    """
    kind, _, rest = spec.partition(":")
    if kind == "pixels":
        size = int(rest) if rest.isdigit() else 16 if not rest else None
        if size is None or size < 1:
            raise SaliencyRLError(f"encoder {spec!r}: pixels takes a size, e.g. pixels:16")
        return ProbeEncoder(spec, lambda frames, _: downsample(frames, size))
    if kind in ("multimae", "multimae-random") and rest:
        return _multimae_encoder(spec, rest, random=kind.endswith("random"), device=device)
    if kind in ("sac", "sac-random") and rest:
        return _sac_encoder(spec, rest, random=kind.endswith("random"), device=device)
    if kind in ("attention", "attention-random") and rest:
        return _attention_encoder(spec, rest, random=kind.endswith("random"), device=device)
    raise SaliencyRLError(
        f"unknown encoder {spec!r}; valid: pixels[:SIZE], multimae:DIR[:MODE], "
        "multimae-random:DIR[:MODE], sac:RUN, sac-random:RUN, attention:CKPT[@POOL], "
        "attention-random:CKPT[@POOL]"
    )


def downsample(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 (T, C, H, W) -> (T, C*size*size) area averages in [0, 1] (adaptive pooling, so
    any size works)."""
    import torch

    pooled = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(frames).float(), size)
    return (pooled / 255.0).reshape(len(frames), -1).numpy()


def _multimae_encoder(spec: str, rest: str, *, random: bool, device: Any) -> ProbeEncoder:
    from saliency_rl.models.frozen_encoder import ENCODER_MODES, FrozenMultiMAEEncoder

    rest, _, readout = rest.partition("@")  # DIR[:MODE][@READOUT]
    path, mode = rest, None
    for candidate in ENCODER_MODES:  # the mode is the last colon-separated part, if any
        if rest.endswith(":" + candidate):
            path, mode = rest[: -len(candidate) - 1], candidate
    readout = readout or "mean"
    encoder = FrozenMultiMAEEncoder.load(path, mode=mode, device=device, readout=readout)
    if random:
        import torch

        torch.manual_seed(0)
        fresh = type(encoder.model)(encoder.model.config)
        encoder = FrozenMultiMAEEncoder(fresh, encoder.mode, device=device, readout=readout)
    fields = ("saliency",) if encoder.needs_saliency else ()

    def per_frame(frames: np.ndarray, data: dict[str, np.ndarray]) -> np.ndarray:
        maps = data.get("saliency")
        parts = [
            encoder(frames[i : i + 256], None if maps is None else maps[i : i + 256])
            for i in range(0, len(frames), 256)
        ]
        return np.concatenate(parts)

    return ProbeEncoder(f"{spec} ({encoder.mode}, {readout})", per_frame, fields=fields)


def _sac_encoder(spec: str, run_dir: str, *, random: bool, device: Any) -> ProbeEncoder:
    import torch

    from saliency_rl.algos.sac_policy import load_policy

    policy = load_policy(run_dir, device)
    agent, inputs = policy.agent, policy.inputs
    if getattr(inputs, "frozen", None) is not None:
        raise SaliencyRLError(
            f"{run_dir} is a frozen-MultiMAE SAC run: probe its encoder as multimae:DIR"
        )
    encoder = agent.encoder
    if random:
        from saliency_rl.algos.sac import orthogonal_init

        torch.manual_seed(0)
        encoder.apply(orthogonal_init)
    encoder.eval()

    def per_stack(stacks: np.ndarray, data: dict[str, np.ndarray]) -> np.ndarray:
        rows = []
        with torch.no_grad():
            for i in range(len(stacks)):
                stored = inputs.first({"rgb": stacks[i]})
                rows.append({k: np.asarray(v) for k, v in stored.items()})
            batch = {k: torch.from_numpy(np.stack([r[k] for r in rows])) for k in rows[0]}
            batch = {k: v.to(agent.device) for k, v in batch.items()}
            return encoder(batch).float().cpu().numpy()

    frames = int(inputs.k)
    return ProbeEncoder(spec, None, per_stack=per_stack, frame_stack=frames)


ATTENTION_POOL = 8
"""Cells per side the attention module's masked features are pooled to (``attention:CKPT``)."""


def _attention_encoder(spec: str, rest: str, *, random: bool, device: Any) -> ProbeEncoder:
    import torch

    from saliency_rl.models.attention import SelfSupervisedAttention, load_attention

    path, _, pool_text = rest.partition("@")
    if pool_text and not (pool_text.isdigit() and int(pool_text) >= 1):
        raise SaliencyRLError(f"encoder {spec!r}: the pooling after @ is a size, e.g. @8")
    module, _ = load_attention(path, device)
    if random:
        torch.manual_seed(0)
        config = module.config()["kwargs"]
        module = SelfSupervisedAttention(**config).to(device)
    module.eval()
    pool = min(int(pool_text or ATTENTION_POOL), module.grid)
    expected = (module.in_channels, module.image_size, module.image_size)

    def per_frame(frames: np.ndarray, data: dict[str, np.ndarray]) -> np.ndarray:
        if tuple(frames.shape[1:]) != expected:
            c, h, w = frames.shape[1:]
            raise SaliencyRLError(
                f"the attention module {path} was trained on {expected[0]}-channel "
                f"{expected[1]}x{expected[2]} frames, the dataset has {c}-channel {h}x{w}: "
                "pretrain one on this dataset (saliency-rl pretrain-attention)"
            )
        parts = []
        with torch.no_grad():
            for i in range(0, len(frames), 256):
                x = torch.from_numpy(frames[i : i + 256]).to(device)
                masked = module.encode(x) * module.mask(x)  # what the policy reads
                pooled = torch.nn.functional.adaptive_avg_pool2d(masked, pool)
                parts.append(pooled.flatten(1).float().cpu().numpy())
        return np.concatenate(parts)

    return ProbeEncoder(f"{spec} (masked features, {pool}x{pool})", per_frame)


__all__ = [
    "ProbeEncoder",
    "SUMMARY_COLUMNS",
    "downsample",
    "fit_mlp",
    "fit_probes",
    "fit_ridge",
    "load_encoder",
    "probe",
    "probe_summary",
    "probe_table",
    "r2_scores",
    "split_episodes",
    "stack_rows",
    "target_names",
    "write_probe",
]
