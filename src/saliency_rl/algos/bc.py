"""Behaviour cloning with an LSTM policy on frozen visual features, with action chunking.

ViSaRL's real-robot experiment (Liang, Thomason, Biyik 2024, Sec. V-C and Table V) trains
its policies by behaviour cloning on frozen MultiMAE features: the state is the frame's
feature vector concatenated with the robot's proprioception; a 2-layer MLP (256, 256)
embeds it, an LSTM with 256 hidden units runs over a history window, and a 2-layer MLP
predicts the next H actions (action chunking), trained by mean-squared error to the
expert's actions.

Data flow (B windows of T steps, S = feature + proprio size, A = action size)::

    states (B, T, S) -> normalise -> MLP 256-256 -> LSTM 256 -> MLP 256 -> (B, T, H, A)

The LSTM starts from a zero state at the first step of every window, in training and at
rollout time alike: the policy keeps the last ``history`` states of the episode and runs
the LSTM over them at every step, so what it sees at rollout is what it was trained on.
``reset()`` empties the history (a new episode).

Chunk execution at rollout time (``BCConfig.execution``):

- ``ensemble`` (default): temporal ensembling as in ACT (Zhao et al., RSS 2023): a chunk
  is predicted at every step, and the action executed at step t is the weighted mean of
  every prediction made for step t, weights exp(-m * i) with i = 0 for the oldest;
- ``first``: the first action of the newest chunk (replanning at every step);
- ``all``: execute the H actions of a chunk open loop, then predict the next chunk.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from saliency_rl.precision import PRECISIONS
from saliency_rl.runs import RunError, check_settings

EXECUTIONS = ("ensemble", "first", "all")


@dataclass
class BCConfig:
    """Everything that defines a behaviour-cloning run (stored in config.json)."""

    mlp_hidden: tuple[int, ...] = (256, 256)
    """Widths of the input MLP on the state (ViSaRL: 2 layers of 256)."""
    lstm_hidden: int = 256
    """LSTM hidden units (ViSaRL: 256)."""
    head_hidden: int = 256
    """Hidden width of the 2-layer output MLP that predicts the action chunk."""
    history: int = 10
    """W: states in the LSTM's window, the current one included (training windows and the
    rollout history have this length)."""
    chunk: int = 5
    """H: actions predicted per step, the current one and the next H - 1."""
    execution: str = "ensemble"
    """How chunks are executed at rollout time: ensemble, first or all (module docstring)."""
    ensemble_decay: float = 0.01
    """m of temporal ensembling's weights exp(-m * i), i = 0 for the oldest prediction
    (ACT's default 0.01: nearly a plain mean)."""
    use_proprio: bool = True
    """Concatenate the observation's proprio vector to the visual features."""
    learning_rate: float = 3e-4
    """AdamW learning rate."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    batch_size: int = 64
    """Windows per gradient step."""
    steps: int = 5000
    """Gradient steps in total."""
    grad_clip: float = 1.0
    """Clip the gradient norm to this (0: no clipping)."""
    val_fraction: float = 0.1
    """Share of the episodes held out for the validation loss (split by episode; at least
    one episode when the dataset has two or more and this is above 0)."""
    seed: int = 0
    """Seeds the weights, the split and the window sampling."""
    log_every: int = 100
    """Gradient steps between metrics rows (train and validation loss)."""
    checkpoint_every: int = 1000
    """Gradient steps between checkpoints (and at the end)."""
    eval_every: int = 0
    """Gradient steps between closed-loop evaluations during training (0: only at the end)."""
    eval_episodes: int = 50
    """Closed-loop episodes per evaluation (0: no evaluation)."""
    precision: str = "fp32"
    """fp32; bf16 (the policy network under bf16 autocast, the loss in fp32); auto: the
    faster of the two, timed on a copy of the network at start (saliency_rl.precision; on
    the CPUs measured so far 256-wide MLPs and LSTMs were slower in bf16). The choice goes
    into config.json ("precision"); a resumed run keeps it."""

    def validate(self) -> BCConfig:
        """Raise RunError naming the first invalid field; returns self."""
        self.mlp_hidden = tuple(int(w) for w in self.mlp_hidden)
        check_settings(
            self,
            choices={"execution": EXECUTIONS, "precision": PRECISIONS},
            positive=("lstm_hidden", "head_hidden", "history", "chunk", "batch_size", "steps",
                      "learning_rate"),
            non_negative=("ensemble_decay", "grad_clip", "log_every", "checkpoint_every",
                          "eval_every", "eval_episodes"),
            fractions=("val_fraction",),
        )  # fmt: skip
        if not self.mlp_hidden or min(self.mlp_hidden) < 1:
            raise RunError(f"mlp_hidden must be positive widths, got {self.mlp_hidden!r}")
        return self

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["mlp_hidden"] = list(self.mlp_hidden)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BCConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise RunError(f"unknown BC config entries: {', '.join(sorted(unknown))}")
        return cls(**data).validate()


PRESETS: dict[str, dict[str, Any]] = {
    # ViSaRL Sec. V-C (real-robot behaviour cloning): MLP (256, 256) -> LSTM 256 -> MLP
    # predicting a chunk of actions, MSE loss. The paper does not give the window, chunk,
    # optimiser or schedule in its text; ours: W 10, H 5 with ACT's temporal ensembling,
    # Adam 3e-4, batch 64, 5000 steps (a few minutes on a CPU for 10 demonstrations).
    "visarl-bc": {},
    # Smoke tests: small and fast, same structure.
    "tiny": dict(
        mlp_hidden=(32, 32),
        lstm_hidden=32,
        head_hidden=32,
        history=4,
        chunk=2,
        batch_size=8,
        steps=20,
        log_every=10,
        checkpoint_every=10,
        eval_episodes=2,
    ),
}


def preset_config(name: str, **overrides: Any) -> BCConfig:
    """The config of a named preset, with fields replaced by ``overrides`` (None: kept)."""
    if name not in PRESETS:
        raise RunError(f"unknown BC preset {name!r}; valid: {', '.join(PRESETS)}")
    values = {**PRESETS[name], **{k: v for k, v in overrides.items() if v is not None}}
    return BCConfig(**values).validate()


# ---------------------------------------------------------------------- the network
def _mlp(sizes: list[int], final_activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if final_activation or i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class BCPolicyNet(nn.Module):
    """States -> action chunks: normalise, MLP, LSTM, MLP.

    Args:
        state_dim: S, visual features + proprio.
        action_dim: A.
        chunk: H, actions predicted per step.
        mlp_hidden: input MLP widths.
        lstm_hidden: LSTM hidden units.
        head_hidden: hidden width of the output MLP.
    """

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        chunk: int,
        mlp_hidden: tuple[int, ...] = (256, 256),
        lstm_hidden: int = 256,
        head_hidden: int = 256,
    ) -> None:
        super().__init__()
        self.state_dim, self.action_dim, self.chunk = state_dim, action_dim, chunk
        # State normalisation from the training episodes (set by set_normalizer; saved
        # with the weights): features and proprio have very different scales.
        self.register_buffer("state_mean", torch.zeros(state_dim))
        self.register_buffer("state_std", torch.ones(state_dim))
        self.input_mlp = _mlp([state_dim, *mlp_hidden], final_activation=True)
        self.lstm = nn.LSTM(mlp_hidden[-1], lstm_hidden, batch_first=True)
        self.head = _mlp([lstm_hidden, head_hidden, chunk * action_dim], final_activation=False)

    def set_normalizer(self, states: np.ndarray) -> None:
        """Mean and std of (N, S) training states; std floored so constant inputs stay 0."""
        mean = torch.as_tensor(states.mean(0), dtype=torch.float32)
        std = torch.as_tensor(states.std(0), dtype=torch.float32).clamp_min(1e-3)
        self.state_mean.copy_(mean)
        self.state_std.copy_(std)

    def forward(
        self, states: torch.Tensor, hidden: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """states: (B, T, S) -> chunks (B, T, H, A) and the LSTM's (h, c), each (1, B, L).

        ``hidden`` None starts the LSTM from zeros (the start of a window).
        """
        x = (states - self.state_mean) / self.state_std  # (B, T, S)
        x = self.input_mlp(x)  # (B, T, 256)
        x, hidden = self.lstm(x, hidden)  # (B, T, L)
        chunks = self.head(x)  # (B, T, H*A)
        return chunks.reshape(*chunks.shape[:2], self.chunk, self.action_dim), hidden


def chunk_targets(actions: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """The next ``chunk`` actions from every step of an episode, and which are real.

    Args:
        actions: (T, A), the actions of an episode's T steps.

    Returns:
        targets (T, H, A), zero past the episode's end, and mask (T, H) bool, False there.
    """
    steps = len(actions)
    targets = np.zeros((steps, chunk, actions.shape[1]), np.float32)
    mask = np.zeros((steps, chunk), bool)
    for h in range(chunk):
        targets[: steps - h, h] = actions[h:]
        mask[: steps - h, h] = True
    return targets, mask


def bc_loss(
    net: BCPolicyNet, states: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Mean-squared error of the predicted chunks to the expert's, over real targets.

    states (B, T, S), targets (B, T, H, A), mask (B, T, H).
    """
    predicted, _ = net(states)
    error = ((predicted.float() - targets) ** 2).mean(-1)  # (B, T, H), fp32 under autocast
    weights = mask.float()
    return (error * weights).sum() / weights.sum().clamp_min(1.0)


# ---------------------------------------------------------------------- rollouts
class ChunkExecutor:
    """Turns the chunk predicted at each step into the action executed (module docstring)."""

    def __init__(self, execution: str, chunk: int, decay: float) -> None:
        self.execution, self.chunk, self.decay = execution, chunk, decay
        self.reset()

    def reset(self) -> None:
        self.pending: deque[tuple[int, np.ndarray]] = deque()  # (step predicted at, chunk)
        self.queue: list[np.ndarray] = []  # execution "all": the rest of the chunk
        self.step = 0

    def needs_prediction(self) -> bool:
        """Whether this step's action needs a new chunk (``all`` reuses the last one)."""
        return self.execution != "all" or not self.queue

    def action(self, chunk: np.ndarray | None) -> np.ndarray:
        """The action of this step, from this step's chunk (H, A) (None if not needed)."""
        t = self.step
        self.step += 1
        if self.execution == "first":
            return chunk[0]
        if self.execution == "all":
            if not self.queue:
                self.queue = list(chunk)
            return self.queue.pop(0)
        self.pending.append((t, chunk))
        while self.pending and self.pending[0][0] <= t - self.chunk:
            self.pending.popleft()  # predictions that do not reach step t
        rows = np.stack([c[t - start] for start, c in self.pending])  # oldest first
        weights = np.exp(-self.decay * np.arange(len(rows)))
        return (weights[:, None] * rows).sum(0) / weights.sum()


class BCPolicy:
    """A trained BC policy acting in an environment (``Policy`` of saliency_rl.evaluation).

    Args:
        net: the trained network.
        encoder: the frozen visual encoder (``FrozenMultiMAEEncoder``) the features came from.
        config: the run's config (history, chunk, execution).
        action_low, action_high: the action space's bounds; actions are clipped to them.
    """

    def __init__(
        self,
        net: BCPolicyNet,
        encoder: Any,
        config: BCConfig,
        action_low: np.ndarray | None = None,
        action_high: np.ndarray | None = None,
    ) -> None:
        self.net = net.eval()
        self.encoder = encoder
        self.config = config
        self.device = next(net.parameters()).device
        self.low, self.high = action_low, action_high
        self.executor = ChunkExecutor(config.execution, config.chunk, config.ensemble_decay)
        self.history: deque[torch.Tensor] = deque(maxlen=config.history)
        self._map: np.ndarray | None = None
        self._map_key: int | None = None

    def reset(self) -> None:
        """A new episode: forget the history and any chunk being executed."""
        self.history.clear()
        self.executor.reset()

    def fork(self) -> BCPolicy:
        """A policy sharing this one's network and encoder with its own history and chunk:
        one per environment when several episodes run side by side (``states`` batches
        their encoder calls)."""
        return BCPolicy(self.net, self.encoder, self.config, self.low, self.high)

    def state(self, obs: dict) -> torch.Tensor:
        """(S,) state of one observation: features of its newest frame (+ proprio)."""
        saliency = self.saliency(obs)  # cached: videos ask for the same frame's map
        return self.states([obs], None if saliency is None else saliency[None])[0]

    def states(self, observations: list[dict], maps: np.ndarray | None = None) -> torch.Tensor:
        """(N, S) states of N observations in one encoder (and predictor) call.

        maps: (N, H, W) saliency maps in [0, 1] for rgb+saliency; None: the observations'
        own ``saliency`` fields or, failing those, the encoder's predictor on their frames.
        """
        channels = self.encoder.frame_channels
        frames = np.stack([np.asarray(o["rgb"])[-channels:] for o in observations])
        saliency = None
        if self.encoder.needs_saliency:
            if maps is None:
                maps = self._maps(observations, frames)
            saliency = maps[:, None]  # (N, 1, H, W)
        parts = [self.encoder(frames, saliency)]  # (N, D)
        if self.config.use_proprio and all("proprio" in o for o in observations):
            parts.append(np.stack([np.asarray(o["proprio"], np.float32) for o in observations]))
        return torch.from_numpy(np.concatenate(parts, axis=1).astype(np.float32))

    def _maps(self, observations: list[dict], frames: np.ndarray | None) -> np.ndarray:
        """(N, H, W) float maps: the observations' stored ones, else predicted in one batch
        from ``frames`` (N, C, H, W), their newest frames."""
        if all("saliency" in o for o in observations):
            stored = np.stack([np.asarray(o["saliency"])[-1] for o in observations])
            return (stored / 255.0 if stored.dtype == np.uint8 else stored).astype(np.float32)
        if self.encoder.predictor is None:
            raise RunError("this policy's encoder needs a saliency predictor and has none")
        predicted = self.encoder.predictor.predict_torch(torch.from_numpy(frames))
        return predicted.float().cpu().numpy()

    @torch.no_grad()
    def predict_chunk(self) -> np.ndarray:
        """(H, A): the chunk predicted from the current history."""
        states = torch.stack(list(self.history))[None].to(self.device)  # (1, T, S)
        chunks, _ = self.net(states)
        return chunks[0, -1].cpu().numpy()

    def act(self, obs: dict, deterministic: bool = True) -> np.ndarray:
        """One observation in, one action out (BC is deterministic either way)."""
        return self.act_on_state(self.state(obs))

    def act_on_state(self, state: torch.Tensor) -> np.ndarray:
        """The action for the next step given its (S,) state (from ``state``/``states``)."""
        self.history.append(state)
        chunk = self.predict_chunk() if self.executor.needs_prediction() else None
        action = self.executor.action(chunk).astype(np.float32)
        if self.low is not None:
            action = np.clip(action, self.low, self.high)
        return action

    def saliency(self, obs: dict) -> np.ndarray | None:
        """The [H, W] map the encoder sees for the newest frame (rgb+saliency), else None."""
        if not self.encoder.needs_saliency:
            return None
        if "saliency" in obs:
            return self._maps([obs], None)[0]
        channels = self.encoder.frame_channels
        frame = np.ascontiguousarray(np.asarray(obs["rgb"])[-channels:])
        key = hash(frame.tobytes())  # computed once per frame, whoever asks first
        if key != self._map_key:
            self._map, self._map_key = self._maps([obs], frame[None])[0], key
        return self._map


def num_val_episodes(episodes: int, fraction: float) -> int:
    """Episodes held out: round(fraction * episodes), at least 1 when possible."""
    if fraction <= 0 or episodes < 2:
        return 0
    return min(max(1, round(fraction * episodes)), episodes - 1)


__all__ = [
    "BCConfig",
    "BCPolicy",
    "BCPolicyNet",
    "ChunkExecutor",
    "EXECUTIONS",
    "PRESETS",
    "bc_loss",
    "chunk_targets",
    "num_val_episodes",
    "preset_config",
]
