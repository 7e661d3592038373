"""What a SAC agent sees of an environment observation, computed once per environment step.

The replay buffer stores, per observation:

- CNN encoders: the uint8 frames ``rgb`` (k*C, H, W) where the mode uses them, and the
  uint8 saliency maps ``saliency`` (k, H, W) of the trained predictor where it uses them;
- frozen MultiMAE: the float32 features ``features`` (k*D,).

With k stacked frames only the newest frame is new at each step: its map (and features)
are computed then and rolled into a stack of k, so every frame's map or feature vector is
computed once, when it is seen, never again per update. After a reset every frame of the
stack is the first frame (``FrameStack``), so its map is computed once and repeated.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from saliency_rl.errors import SaliencyRLError
from saliency_rl.models.frozen_encoder import SALIENCY_ENCODER_MODES, FrozenMultiMAEEncoder
from saliency_rl.models.pixel_cnn import uses_saliency


class StepInputs:
    """Env observations -> stored observations of one encoder setting.

    Args:
        encoder: ``cnn`` or ``multimae``.
        mode: the cnn saliency mode or the MultiMAE encoder mode.
        frames: k, stacked frames per observation.
        frame_channels: C, channels per frame.
        image_size: frame side.
        predictor: the saliency predictor (``SaliencyPredictor``) where the mode needs maps.
        frozen: the frozen MultiMAE encoder for ``multimae``.
        device: where the predictor and MultiMAE run.
    """

    def __init__(
        self,
        encoder: str,
        mode: str,
        *,
        frames: int,
        frame_channels: int,
        image_size: int,
        predictor: Any = None,
        frozen: FrozenMultiMAEEncoder | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.encoder, self.mode = encoder, mode
        self.k, self.channels, self.size = frames, frame_channels, image_size
        self.device = torch.device(device)
        self.needs_maps = (
            uses_saliency(mode) if encoder == "cnn" else mode in SALIENCY_ENCODER_MODES
        )
        self.stores_rgb = encoder == "cnn" and mode != "saliency"
        if self.needs_maps and predictor is None:
            raise SaliencyRLError(
                f"{encoder} mode {mode!r} needs saliency maps: give the trained predictor "
                "(--predictor CKPT, made by `saliency-rl train-saliency`)"
            )
        if encoder == "multimae" and frozen is None:
            raise SaliencyRLError("encoder multimae needs the frozen MultiMAE encoder")
        if frozen is not None and tuple(frozen.image_size) != (image_size, image_size):
            # checked here, before a run directory is made, not at the first encoded frame
            height, width = frozen.image_size
            raise SaliencyRLError(
                f"the MultiMAE encoder was pretrained on {height}x{width} frames, the "
                f"environment renders {image_size}x{image_size}: use --image-size {height}"
            )
        self.predictor = predictor if self.needs_maps else None
        self.frozen = frozen
        self._maps: np.ndarray | None = None  # (k, H, W) uint8
        self._features: np.ndarray | None = None  # (k, D) float32

    @property
    def fields(self) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
        """The replay buffer's fields for these inputs."""
        k, size = self.k, self.size
        if self.encoder == "multimae":
            return {"features": ((k * self.frozen.feature_dim,), torch.float32)}
        fields: dict[str, tuple[tuple[int, ...], torch.dtype]] = {}
        if self.stores_rgb:
            fields["rgb"] = ((k * self.channels, size, size), torch.uint8)
        if self.needs_maps:
            fields["saliency"] = ((k, size, size), torch.uint8)
        return fields

    # ------------------------------------------------------------------ per frame
    def _maps_of(self, frames: torch.Tensor) -> np.ndarray:
        """uint8 (n, C, H, W) -> uint8 maps (n, H, W), rounded as stored datasets are.

        A predictor fitted at another size (frames are clicked at 64 px, DrQ learns at 84)
        sees the frames resized to its own size, and its maps are resized back (bilinear):
        once per environment step, a few hundred microseconds."""
        frames = frames.to(self.device)
        trained = tuple(self.predictor.image_size)
        if trained != (self.size, self.size):
            frames = F.interpolate(frames.float(), size=trained, mode="bilinear",
                                   align_corners=False, antialias=True)  # fmt: skip
            frames = frames.round_().clamp_(0, 255).to(torch.uint8)
        maps = self.predictor.predict_torch(frames)
        if trained != (self.size, self.size):
            maps = F.interpolate(maps[:, None], size=(self.size, self.size), mode="bilinear",
                                 align_corners=False)[:, 0].clamp_(0.0, 1.0)  # fmt: skip
        return (maps * 255.0).round_().to(torch.uint8).cpu().numpy()

    def _features_of(self, frames: torch.Tensor, maps: np.ndarray | None) -> np.ndarray:
        """uint8 (n, C, H, W) -> float32 (n, D), each frame encoded alone."""
        sal = None if maps is None else torch.from_numpy(maps)[:, None]  # (n, 1, H, W)
        return self.frozen.encode_torch(frames, sal).cpu().numpy()

    def _frames(self, rgb: np.ndarray, newest_only: bool) -> torch.Tensor:
        frames = torch.from_numpy(np.ascontiguousarray(rgb)).view(
            self.k, self.channels, self.size, self.size
        )
        return frames[-1:] if newest_only else frames

    # ------------------------------------------------------------------ observations
    def first(self, obs: dict) -> dict[str, np.ndarray]:
        """The stored form of an observation computed from scratch (a reset, or a policy
        without history): every frame of the stack."""
        frames = self._frames(obs["rgb"], newest_only=False)
        self._maps = self._maps_of(frames) if self.needs_maps else None
        if self.encoder == "multimae":
            self._features = self._features_of(frames, self._maps)
        return self._stored(obs)

    def next(self, obs: dict) -> dict[str, np.ndarray]:
        """The stored form of the observation after a step: only the newest frame is new."""
        if self.k == 1 or (self._maps is None and self._features is None):
            return self.first(obs)
        frames = self._frames(obs["rgb"], newest_only=True)
        new_map = self._maps_of(frames) if self.needs_maps else None
        if new_map is not None:
            self._maps = np.concatenate([self._maps[1:], new_map])
        if self.encoder == "multimae":
            self._features = np.concatenate(
                [self._features[1:], self._features_of(frames, new_map)]
            )
        return self._stored(obs)

    def _stored(self, obs: dict) -> dict[str, np.ndarray]:
        if self.encoder == "multimae":
            return {"features": self._features.reshape(-1).astype(np.float32, copy=False)}
        stored = {}
        if self.stores_rgb:
            stored["rgb"] = obs["rgb"]
        if self.needs_maps:
            stored["saliency"] = self._maps
        return stored

    def newest_map(self) -> np.ndarray | None:
        """The newest frame's saliency map as float (H, W) in [0, 1], or None without maps."""
        return None if self._maps is None else self._maps[-1].astype(np.float32) / 255.0

    # ------------------------------------------------------------------ resume
    def state(self) -> dict[str, Any]:
        return {
            "maps": None if self._maps is None else torch.from_numpy(self._maps.copy()),
            "features": None if self._features is None else torch.from_numpy(self._features.copy()),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self._maps = None if state["maps"] is None else state["maps"].numpy()
        self._features = None if state["features"] is None else state["features"].numpy()
