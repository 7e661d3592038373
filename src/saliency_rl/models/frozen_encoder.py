"""A pretrained MultiMAE as a frozen feature extractor for policies.

ViSaRL trains its policies on one feature vector per frame: the mean of the encoder's patch
tokens, without masking. Three modes, as in the paper's comparison:

- ``rgb``: an RGB-only (MAE) pretraining; RGB frames at policy time;
- ``rgb+saliency-pretrain-only``: saliency used in pretraining, RGB alone at policy time
  (MultiMAE encodes any subset of its modalities);
- ``rgb+saliency``: RGB and saliency at policy time; the saliency map comes from a predictor
  run on the fly (``SaliencyPredictor.predict_torch``), from the observation's ``saliency``
  entry, or from a dataset's ``saliency`` field.

Stacked frames (obs["rgb"] of k*C channels) are encoded one frame at a time and the k
features concatenated, oldest first: a feature vector of k * D.

Three ways to use it: call it on frames (``encoder(rgb)``); wrap an environment
(``FeatureObservationWrapper``) so any RL library trains on the features; or compute a
dataset's features once (``cache_dataset_features``), stored as an extra dataset field
``features_<name>`` of float32 (D,) per frame, beside the frames, with the checkpoint's
fingerprint in meta.json so a stale cache is detected.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

from saliency_rl.data.dataset import Dataset
from saliency_rl.devices import resolve_device
from saliency_rl.errors import DatasetError
from saliency_rl.models.multimae import (
    ModelError,
    MultiMAE,
    find_checkpoint,
    read_checkpoint_config,
    readout_grid,
    rgb_to_input,
    saliency_to_input,
)

ENCODER_MODES: dict[str, str] = {
    "rgb": "RGB-only pretraining, RGB at policy time",
    "rgb+saliency-pretrain-only": "RGB+saliency pretraining, RGB alone at policy time",
    "rgb+saliency": "RGB+saliency pretraining, RGB and saliency at policy time",
    "rgb_x_saliency": "RGB pretraining, RGB multiplied by its saliency map at policy time "
    "(ours: what the map calls background is blacked out before the encoder sees it)",
}
SALIENCY_ENCODER_MODES = ("rgb+saliency", "rgb_x_saliency")
"""Modes whose features depend on saliency maps (predicted, or given with the frames)."""


class SaliencySource(Protocol):
    """What the encoder needs of a saliency predictor (``saliency.predictor.SaliencyPredictor``)."""

    def predict_torch(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) -> float (N, H, W) in [0, 1]."""
        ...


class FrozenMultiMAEEncoder:
    """Observation frames -> one feature vector per observation, from a frozen MultiMAE.

    Args:
        model: the pretrained MultiMAE (put in eval mode, gradients off).
        mode: one of ``ENCODER_MODES``.
        predictor: saliency predictor for ``rgb+saliency`` when maps are not given.
        device: where the model runs.
        checkpoint: where the model was loaded from (for provenance only).
        readout: how features are read out of the tokens (``MultiMAE.features``): ``mean``
            (ViSaRL's, the default), ``global`` or ``gridR``.
    """

    def __init__(
        self,
        model: MultiMAE,
        mode: str,
        predictor: SaliencySource | None = None,
        device: str | torch.device = "cpu",
        checkpoint: Path | None = None,
        readout: str = "mean",
    ) -> None:
        if mode not in ENCODER_MODES:
            raise ModelError(f"unknown encoder mode {mode!r}; valid: {', '.join(ENCODER_MODES)}")
        modalities = tuple(model.config.modalities)
        if mode == "rgb" and modalities != ("rgb",):
            raise ModelError(
                f"mode 'rgb' is for an RGB-only pretraining; this model was pretrained on "
                f"{', '.join(modalities)}: use mode 'rgb+saliency-pretrain-only' for RGB input"
            )
        if mode == "rgb_x_saliency" and "rgb" not in modalities:
            raise ModelError(
                f"mode 'rgb_x_saliency' needs a model pretrained on rgb; this one was "
                f"pretrained on {', '.join(modalities)}"
            )
        if mode.startswith("rgb+saliency") and not {"rgb", "saliency"} <= set(modalities):
            raise ModelError(
                f"mode {mode!r} needs a model pretrained on rgb and saliency; this one was "
                f"pretrained on {', '.join(modalities)}"
            )
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval().requires_grad_(False)
        self.mode = mode
        self.predictor = predictor
        self.checkpoint = checkpoint
        self.frame_channels = model.config.channels["rgb"]
        self.image_size = tuple(model.config.image_size)
        self.readout = readout
        grid = readout_grid(readout)  # 0: one vector of D
        modalities = 2 if mode == "rgb+saliency" else 1
        self.feature_dim = model.config.dim * (modalities * grid * grid if grid else 1)
        self._fingerprint: str | None = None

    @classmethod
    def load(
        cls,
        checkpoint: str | Path,
        mode: str | None = None,
        predictor: SaliencySource | str | Path | None = None,
        device: str | torch.device = "auto",
        readout: str = "mean",
    ) -> FrozenMultiMAEEncoder:
        """Load from a checkpoint directory or a pretraining run directory (newest checkpoint).

        Args:
            mode: None picks ``rgb`` for an RGB-only model and ``rgb+saliency`` otherwise.
            predictor: a predictor object, or a predictor checkpoint directory (loaded with
                ``load_saliency_source``: a predictor or an attention module); only used
                by ``rgb+saliency``.
            device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        """
        directory = find_checkpoint(checkpoint)
        config = read_checkpoint_config(directory)
        if mode is None:
            mode = "rgb" if tuple(config["kwargs"]["modalities"]) == ("rgb",) else "rgb+saliency"
        device = resolve_device(device)
        if isinstance(predictor, str | Path):
            from saliency_rl.models.attention_saliency import load_saliency_source

            predictor = load_saliency_source(predictor, device=str(device))
        model = MultiMAE.from_pretrained(directory, device=device)
        return cls(
            model, mode, predictor=predictor, device=device, checkpoint=directory, readout=readout
        )

    # ------------------------------------------------------------------ encoding
    @property
    def needs_saliency(self) -> bool:
        return self.mode in SALIENCY_ENCODER_MODES

    def frames_per_observation(self, channels: int) -> int:
        """k for an observation of ``channels`` stacked channels."""
        if channels % self.frame_channels:
            raise ModelError(
                f"observation has {channels} channels, not a multiple of the model's "
                f"{self.frame_channels} per frame"
            )
        return channels // self.frame_channels

    def output_dim(self, channels: int) -> int:
        """Feature size for an observation of ``channels`` stacked channels: k * D."""
        return self.frames_per_observation(channels) * self.feature_dim

    @torch.no_grad()
    def encode_torch(self, rgb: torch.Tensor, saliency: torch.Tensor | None = None) -> torch.Tensor:
        """Features of observations.

        Args:
            rgb: uint8 (N, k*C, H, W), k stacked frames, oldest first.
            saliency: for ``rgb+saliency`` and ``rgb_x_saliency``, (N, k, H, W) maps (uint8
                [0, 255] or float [0, 1]); predicted from the frames when None. Ignored by
                the other modes.

        Returns:
            float32 (N, k*D) on the encoder's device.
        """
        if rgb.ndim != 4:
            raise ModelError(f"rgb must be (N, k*C, H, W), got shape {tuple(rgb.shape)}")
        n, channels, height, width = rgb.shape
        if (height, width) != self.image_size:
            raise ModelError(
                f"frames are {height}x{width}; the encoder was pretrained on "
                f"{self.image_size[0]}x{self.image_size[1]}: use frames of that size"
            )
        k = self.frames_per_observation(channels)
        frames = rgb.to(self.device).reshape(n * k, self.frame_channels, height, width)
        inputs = {}
        if self.needs_saliency:
            if saliency is None:
                if self.predictor is None:
                    raise ModelError(
                        f"mode {self.mode} needs saliency maps: give a predictor (a "
                        "SaliencyPredictor or its checkpoint) or the maps themselves"
                    )
                maps = self.predictor.predict_torch(frames)  # (N*k, H, W) in [0, 1]
            else:
                maps = saliency.to(self.device).reshape(n * k, height, width)
            if maps.dtype == torch.uint8:
                maps = maps.float() / 255.0
            if self.mode == "rgb_x_saliency":  # the map masks the frame, as the CNN's mode
                frames = frames.float() * maps[:, None].float()  # rgb_to_input takes floats
            else:
                inputs["saliency"] = saliency_to_input(maps)  # (N*k, 1, H, W)
        inputs["rgb"] = rgb_to_input(frames)  # (N*k, C, H, W)
        features = self.model.features(inputs, self.readout)  # (N*k, D)
        return features.float().reshape(n, k * self.feature_dim)

    def __call__(self, rgb: np.ndarray, saliency: np.ndarray | None = None) -> np.ndarray:
        """numpy version of ``encode_torch``: uint8 (N, k*C, H, W) -> float32 (N, k*D)."""
        rgb_t = torch.from_numpy(np.ascontiguousarray(rgb))
        sal_t = None if saliency is None else torch.from_numpy(np.ascontiguousarray(saliency))
        return self.encode_torch(rgb_t, sal_t).cpu().numpy()

    def fingerprint(self) -> str:
        """sha256 of the weights (names, dtypes, shapes and values), identifying the model."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            for name, tensor in sorted(self.model.state_dict().items()):
                tensor = tensor.detach().cpu().contiguous()
                digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
                digest.update(tensor.numpy().tobytes())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint


class FeatureObservationWrapper(gym.ObservationWrapper):
    """Replace pixel observations with frozen-encoder features.

    The observation ``{"rgb": uint8 (k*C, H, W), ...}`` becomes float32 (k*D,), or, when
    ``keep`` names other entries (e.g. ``("proprio",)``), ``{"features": (k*D,), **kept}``.
    In mode ``rgb+saliency`` the maps come from the observation's ``saliency`` entry
    ((k, H, W) uint8 or float) when it has one, else from the encoder's predictor.
    """

    def __init__(
        self, env: gym.Env, encoder: FrozenMultiMAEEncoder, keep: Sequence[str] = ()
    ) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Dict) or "rgb" not in space.spaces:
            raise ModelError("FeatureObservationWrapper needs observations {'rgb': ..., ...}")
        missing = [key for key in keep if key not in space.spaces]
        if missing:
            raise ModelError(
                f"cannot keep {', '.join(missing)}: the observation has {', '.join(space.spaces)}"
            )
        channels, height, width = space["rgb"].shape
        if (height, width) != encoder.image_size:
            raise ModelError(
                f"the environment renders {height}x{width} frames; the encoder was pretrained "
                f"on {encoder.image_size[0]}x{encoder.image_size[1]}: make the env with "
                f"image_size={encoder.image_size[0]}"
            )
        self.encoder = encoder
        self.keep = tuple(keep)
        features = gym.spaces.Box(-np.inf, np.inf, (encoder.output_dim(channels),), np.float32)
        if self.keep:
            self.observation_space = gym.spaces.Dict(
                {"features": features, **{key: space[key] for key in self.keep}}
            )
        else:
            self.observation_space = features

    def observation(self, observation: dict) -> Any:
        saliency = observation.get("saliency") if self.encoder.needs_saliency else None
        features = self.encoder(
            observation["rgb"][None], None if saliency is None else np.asarray(saliency)[None]
        )[0]
        if not self.keep:
            return features
        return {"features": features, **{key: observation[key] for key in self.keep}}


def default_feature_field(encoder: FrozenMultiMAEEncoder) -> str:
    """``features_<checkpoint name>_<mode>[_<readout>]``, cut to a valid dataset field name."""
    base = "model"
    if encoder.checkpoint is not None:
        # OUT/checkpoints/step_N names the run OUT; another directory names itself.
        run = encoder.checkpoint.parent
        base = run.parent.name if run.name == "checkpoints" else encoder.checkpoint.name
    readout = "" if encoder.readout == "mean" else f"_{encoder.readout}"  # ViSaRL's: unnamed
    slug = re.sub(r"[^a-z0-9]+", "_", f"{base}_{encoder.mode}{readout}".lower()).strip("_")
    return f"features_{slug}"[:64].rstrip("_")


def cache_dataset_features(
    dataset: Dataset | str | Path,
    encoder: FrozenMultiMAEEncoder,
    name: str | None = None,
    batch_size: int = 256,
    saliency: str = "auto",
    overwrite: bool = False,
    progress: bool = True,
) -> str:
    """Compute every frame's features once and store them as the dataset field ``name``.

    The field holds float32 (D,) per frame (frames are stored unstacked; stack k consecutive
    rows to match a k-frame observation). meta.json records the checkpoint, the mode, the
    saliency source and the weights' fingerprint: episodes already computed with the same
    weights are kept (an interrupted run continues), a field from other weights is an error
    unless ``overwrite``, which removes it first.

    Args:
        dataset: a Dataset or its directory.
        encoder: the frozen encoder.
        name: field name; ``default_feature_field(encoder)`` when None.
        batch_size: frames encoded at once.
        saliency: for ``rgb+saliency``: ``dataset`` (its ``saliency`` field), ``predictor``
            (the encoder's predictor), or ``auto`` (the field when present).
        overwrite: remove the field's files and recompute them.
        progress: show a progress bar.

    Returns:
        The field name.
    """
    dataset = dataset if isinstance(dataset, Dataset) else Dataset.open(dataset)
    name = name or default_feature_field(encoder)
    if not name.startswith("features_"):
        raise DatasetError(f"feature field names start with 'features_', got {name!r}")
    if saliency not in ("auto", "dataset", "predictor"):
        raise ModelError(f"saliency must be auto, dataset or predictor, got {saliency!r}")
    source = None
    if encoder.needs_saliency:
        has_maps = dataset.has_field("saliency")
        source = (
            "dataset" if saliency == "dataset" or (saliency == "auto" and has_maps) else "predictor"
        )
        if source == "dataset" and not has_maps:
            raise DatasetError(
                f"dataset {dataset.root} has no saliency field: run `saliency-rl label "
                f"{dataset.root} --predictor CKPT` first, or use the predictor"
            )
        if source == "predictor" and encoder.predictor is None:
            raise ModelError(
                "mode rgb+saliency needs saliency: the dataset has no saliency field and the "
                "encoder has no predictor"
            )
    provenance = {
        "checkpoint": str(encoder.checkpoint) if encoder.checkpoint else None,
        "mode": encoder.mode,
        "saliency_source": source,
        "fingerprint": encoder.fingerprint(),
    }
    # Dataset has no public per-episode existence test or removal for extra fields yet.
    paths = {e: dataset._field_path(name, e) for e in range(dataset.num_episodes)}
    present = {e for e, path in paths.items() if path.exists()}
    stored = dataset.meta["extra_fields"].get(name, {}).get("provenance", {})
    same = all(stored.get(k) == provenance[k] for k in ("fingerprint", "mode", "saliency_source"))
    if present and (overwrite or not same):
        if not overwrite:
            raise DatasetError(
                f"dataset field {name} holds features of another model, mode or saliency source "
                f"({stored.get('checkpoint')}, {stored.get('mode')}, "
                f"{stored.get('saliency_source')}): pass overwrite=True or another name"
            )
        for episode in sorted(present):
            paths[episode].unlink()
        present = set()
    if not present:
        dataset.meta["extra_fields"].pop(name, None)  # a new model may have another width
    todo = [e for e in range(dataset.num_episodes) if e not in present]
    fields = ["rgb"] + (["saliency"] if source == "dataset" else [])
    total = int(sum(dataset.episode_lengths[todo])) if todo else 0
    bar = tqdm(total=total, unit="frame", disable=not progress, desc=f"cache {name}")
    with bar:
        for episode in todo:
            data = dataset.episode(episode, fields)
            rows = []
            for start in range(0, len(data["rgb"]), batch_size):
                maps = data["saliency"][start : start + batch_size] if source == "dataset" else None
                rows.append(encoder(data["rgb"][start : start + batch_size], maps))
                bar.update(len(rows[-1]))
            # The provenance goes in with the first file written, after any old files are gone.
            first = not present and episode == todo[0]
            dataset.write_field(
                name,
                episode,
                np.concatenate(rows).astype(np.float32),
                provenance=provenance if first else None,
            )
    return name
