"""The attention parts of an A2C/ACKTR run: the pretrained module it may use, and the
recent frames its self-supervised attention trains on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from saliency_rl.algos.a2c import PRETRAINED_MODES
from saliency_rl.errors import CheckpointError
from saliency_rl.models.attention import load_attention
from saliency_rl.runs import RunError


class RecentFrames:
    """The newest frame of every environment over the last ``size`` steps, for frame pairs.

    A pair is two distinct frames of one game of one environment, 1 to size - 1 steps apart
    (source and target in either order, as the official code's buffer of 60).
    """

    def __init__(self, size: int, num_envs: int, device: torch.device) -> None:
        self.size = size
        self.frames = torch.zeros(size, num_envs, 84, 84, dtype=torch.uint8, device=device)
        self.pos = 0  # the slot written next
        self.run = np.zeros(num_envs, np.int64)  # frames of the current game, newest back

    def add(self, newest: torch.Tensor, new_game: np.ndarray) -> None:
        """newest: uint8 (N, 84, 84); new_game: bool (N,), True where it starts a game."""
        self.frames[self.pos] = newest
        self.pos = (self.pos + 1) % self.size
        self.run = np.where(new_game, 1, np.minimum(self.run + 1, self.size))

    def sample(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(source, target) uint8 (M, 1, 84, 84), one pair per env with 2+ frames, or None."""
        envs = np.flatnonzero(self.run >= 2)
        if len(envs) == 0:
            return None
        run = self.run[envs]
        first = np.floor(rng.random(len(envs)) * run).astype(np.int64)  # ages, 0 = newest
        second = np.floor(rng.random(len(envs)) * (run - 1)).astype(np.int64)
        second += second >= first  # distinct
        slots = [(self.pos - 1 - age) % self.size for age in (first, second)]
        index = torch.as_tensor(envs, device=self.frames.device)
        source, target = (
            self.frames[torch.as_tensor(s, device=self.frames.device), index][:, None]
            for s in slots
        )
        return source, target

    def state(self) -> dict[str, Any]:
        return {"frames": self.frames.cpu(), "pos": self.pos, "run": self.run.tolist()}

    def load(self, state: dict[str, Any]) -> None:
        self.frames.copy_(state["frames"])
        self.pos, self.run = int(state["pos"]), np.asarray(state["run"], np.int64)


def pretrained_attention(
    mode: str, checkpoint: str | Path | None, game: str, device: torch.device
) -> tuple[Any, dict[str, Any]]:
    """Load the fixed module of frozen / universal / transfer; (module or None, run config entry).

    The mode names what the module was pretrained on, and must match the checkpoint's
    provenance: ``frozen`` this game, ``universal`` several games including this one,
    ``transfer`` only other games.
    """
    entry: dict[str, Any] = {"mode": mode, "checkpoint": None}
    if mode not in PRETRAINED_MODES:
        if checkpoint is not None:
            raise RunError(
                f"--attention-checkpoint is only used by the attention modes "
                f"{', '.join(PRETRAINED_MODES)}, not {mode!r}"
            )
        return None, entry
    if checkpoint is None:
        raise RunError(
            f"attention mode {mode!r} needs a pretrained module: pass --attention-checkpoint "
            "CKPT, made by `saliency-rl pretrain-attention DATASET --out CKPT`"
        )
    module, config = load_attention(checkpoint, device)
    if (module.in_channels, module.image_size, module.grid) != (1, 84, 7):
        raise RunError(
            f"{checkpoint} was pretrained on {module.in_channels}x{module.image_size}x"
            f"{module.image_size} frames with a {module.grid}x{module.grid} mask; A2C needs a "
            "module pretrained on Atari frames (grey 84x84, 7x7 mask)"
        )
    provenance = config.get("provenance", {})
    games = provenance.get("games")
    if not games:
        raise CheckpointError(
            f"{checkpoint} does not say which games it was pretrained on (no provenance.games); "
            "make it with `saliency-rl pretrain-attention`"
        )
    seen = ", ".join(games)
    if mode == "frozen" and game not in games:
        raise RunError(
            f"attention mode 'frozen' uses a module pretrained on this game ({game}), but "
            f"{checkpoint} was pretrained on {seen}: use --attention transfer"
        )
    if mode == "universal" and (game not in games or len(games) < 2):
        raise RunError(
            f"attention mode 'universal' uses a module pretrained on several games including "
            f"{game}; {checkpoint} was pretrained on {seen}: use "
            f"{'frozen' if game in games else 'transfer'}"
        )
    if mode == "transfer" and game in games:
        raise RunError(
            f"attention mode 'transfer' uses a module pretrained on other games, but "
            f"{checkpoint} was pretrained on {seen}, {game} included: use "
            f"{'frozen' if len(games) == 1 else 'universal'}"
        )
    entry.update(
        checkpoint=str(Path(checkpoint).resolve()),
        pretrained_on=list(games),
        pretraining=provenance,
    )
    return module, entry
