"""The replay buffer of off-policy agents (SAC): a ring of observations, each stored once.

An observation is a dict of named arrays, e.g. ``{"rgb": uint8 (k*3, H, W), "saliency":
uint8 (k, H, W)}`` for a pixel encoder (the saliency maps computed once, when the step
was taken, never again per update) or ``{"features": float32 (k*D,)}`` for a frozen
MultiMAE (features computed once per step; updates then run on vectors).

Storage: slot ``i`` holds one observation; the transition that starts at slot ``i`` (its
action, reward, discount) ends at slot ``i + 1``. Each observation is stored once, not
twice as (obs, next_obs) pairs, which halves the memory of pixel buffers. The last
observation of an episode starts no transition (``valid[i]`` is False), nor does the slot
written last. Sampling draws slots uniformly among valid ones with a NumPy Generator,
so a seeded buffer samples the same batches, and ``state()`` / ``load_state()`` restore it
exactly (tensors only, for ``checkpoint.save_checkpoint``: never a pickle).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from saliency_rl.errors import SaliencyRLError


class ReplayError(SaliencyRLError, ValueError):
    """A replay buffer setting or input that does not fit."""


@dataclass
class Batch:
    """Sampled transitions, on the requested device."""

    obs: dict[str, torch.Tensor]
    """Each field (B, *shape), in its stored dtype (uint8 frames stay uint8)."""
    action: torch.Tensor
    """float32 (B, A)."""
    reward: torch.Tensor
    """float32 (B, 1)."""
    discount: torch.Tensor
    """float32 (B, 1): 0 where the episode terminated, 1 otherwise (time limits bootstrap)."""
    next_obs: dict[str, torch.Tensor]
    """As ``obs``, one step later."""


class ReplayBuffer:
    """A ring buffer of ``capacity`` observations and the transitions between them.

    Args:
        capacity: observations kept (about as many transitions); the oldest go first.
        fields: ``{name: (shape, torch dtype)}`` of one observation.
        action_dim: A, the size of an action.
        seed: seeds the sampling Generator.

    Usage per episode: ``start(obs)`` with the reset observation, then ``add(action,
    reward, next_obs, terminated)`` after every step.
    """

    def __init__(
        self,
        capacity: int,
        fields: Mapping[str, tuple[tuple[int, ...], torch.dtype]],
        action_dim: int,
        seed: int = 0,
    ) -> None:
        if capacity < 2:
            raise ReplayError(f"replay capacity must be >= 2 observations, got {capacity}")
        self.capacity, self.action_dim = capacity, action_dim
        self.fields = {name: (tuple(shape), dtype) for name, (shape, dtype) in fields.items()}
        self.obs = {
            name: torch.zeros((capacity, *shape), dtype=dtype)
            for name, (shape, dtype) in self.fields.items()
        }
        self.action = torch.zeros(capacity, action_dim)
        self.reward = torch.zeros(capacity, 1)
        self.discount = torch.zeros(capacity, 1)
        self.valid = np.zeros(capacity, bool)
        self.rng = np.random.default_rng(seed)
        self.pos = -1  # the slot written last
        self.filled = 0  # slots written at least once
        self.transitions = 0  # transitions added, ever (a counter, not the size)

    def __len__(self) -> int:
        """Transitions that can be sampled now."""
        return int(self.valid[: self.filled].sum())

    # ------------------------------------------------------------------ writing
    def _write(self, obs: Mapping[str, Any]) -> int:
        missing = set(self.fields) - set(obs)
        if missing:
            raise ReplayError(
                f"observation lacks {', '.join(sorted(missing))}; the buffer stores "
                f"{', '.join(self.fields)}"
            )
        slot = (self.pos + 1) % self.capacity
        for name, (shape, _) in self.fields.items():
            value = torch.as_tensor(np.asarray(obs[name]))
            if tuple(value.shape) != shape:
                raise ReplayError(
                    f"observation field {name} has shape {tuple(value.shape)}, the buffer "
                    f"stores {shape}"
                )
            self.obs[name][slot] = value
        self.valid[slot] = False  # its successor is not known yet
        self.pos, self.filled = slot, min(self.filled + 1, self.capacity)
        return slot

    def start(self, obs: Mapping[str, Any]) -> None:
        """Store the first observation of an episode."""
        self._write(obs)

    def add(
        self, action: Any, reward: float, next_obs: Mapping[str, Any], terminated: bool
    ) -> None:
        """Store the step from the newest observation: its action and reward, and ``next_obs``.

        ``terminated``: the episode ended in a terminal state (no bootstrap). A time limit
        is not termination: its transition keeps discount 1, then call ``start`` again.
        """
        if self.pos < 0:
            raise ReplayError("call start(obs) with an episode's first observation before add")
        before = self.pos
        self._write(next_obs)
        self.action[before] = torch.as_tensor(np.asarray(action, np.float32)).view(-1)
        self.reward[before, 0] = float(reward)
        self.discount[before, 0] = 0.0 if terminated else 1.0
        self.valid[before] = True
        self.transitions += 1

    # ------------------------------------------------------------------ sampling
    def sample_indices(self, batch_size: int) -> np.ndarray:
        """Slots of ``batch_size`` valid transitions, uniform with replacement."""
        if not self.valid.any():
            raise ReplayError("the replay buffer holds no transition yet")
        index = self.rng.integers(0, self.filled, size=batch_size)
        bad = ~self.valid[index]
        while bad.any():  # redraw the few slots that start no transition (episode ends)
            index[bad] = self.rng.integers(0, self.filled, size=int(bad.sum()))
            bad = ~self.valid[index]
        return index

    def sample(self, batch_size: int, device: str | torch.device = "cpu") -> Batch:
        """``batch_size`` transitions drawn uniformly (with replacement)."""
        index = torch.from_numpy(self.sample_indices(batch_size))
        return self.batch_at(index, (index + 1) % self.capacity, device)

    def batch_at(
        self,
        index: torch.Tensor,
        after: torch.Tensor,
        device: str | torch.device = "cpu",
        reward: torch.Tensor | None = None,
        discount: torch.Tensor | None = None,
    ) -> Batch:
        """The transitions starting at slots ``index`` (B,) whose next observations are at
        ``after`` (B,); ``reward`` and ``discount`` (B, 1) replace the stored one-step values
        (an n-step return, ``algos/nstep.py``)."""
        device = torch.device(device)

        def take(tensor: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
            return tensor.index_select(0, at).to(device, non_blocking=True)

        return Batch(
            obs={name: take(t, index) for name, t in self.obs.items()},
            action=take(self.action, index),
            reward=take(self.reward, index) if reward is None else reward.to(device),
            discount=take(self.discount, index) if discount is None else discount.to(device),
            next_obs={name: take(t, after) for name, t in self.obs.items()},
        )

    # ------------------------------------------------------------------ resume
    def state(self) -> dict[str, Any]:
        """Everything to restore the buffer exactly: tensors of the filled slots, counters, RNG."""
        n = self.filled
        return {
            "obs": {name: t[:n] for name, t in self.obs.items()},
            "action": self.action[:n],
            "reward": self.reward[:n],
            "discount": self.discount[:n],
            "valid": torch.from_numpy(self.valid[:n].copy()),
            "pos": self.pos,
            "filled": n,
            "transitions": self.transitions,
            "rng": self.rng.bit_generator.state,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state()`` returned (the buffer must have the same capacity and fields)."""
        n = int(state["filled"])
        if n > self.capacity or set(state["obs"]) != set(self.fields):
            raise ReplayError(
                f"saved replay state ({n} slots of {', '.join(state['obs'])}) does not fit this "
                f"buffer ({self.capacity} slots of {', '.join(self.fields)})"
            )
        for name, tensor in state["obs"].items():
            self.obs[name][:n] = tensor
        self.action[:n], self.reward[:n] = state["action"], state["reward"]
        self.discount[:n] = state["discount"]
        self.valid[:] = False
        self.valid[:n] = state["valid"].numpy()
        self.pos, self.filled = int(state["pos"]), n
        self.transitions = int(state["transitions"])
        self.rng.bit_generator.state = state["rng"]
