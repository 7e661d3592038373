"""Train A2C or ACKTR on an Atari game: ``saliency-rl train a2c|acktr --env atari:MsPacman``.

:func:`train_a2c` starts a run, :func:`resume_a2c` continues one; :func:`train_acktr` and
:func:`resume_acktr` do the same for ACKTR (``A2CConfig.algo == "acktr"``: the same loop,
the same losses, K-FAC instead of RMSprop, see algos.a2c.ACKTRAgent and algos.kfac).
:func:`load_policy` loads a run's latest weights for playing. The run directory::

    runs/<env>__<algo>-<attention>__<seed>__<time>/
      config.json                 env, A2CConfig, attention mode and what its module was
                                  pretrained on, device, versions
      metrics.csv                 every log_every steps: fps, losses, training scores; and a
                                  row per evaluation (eval_* columns)
      checkpoints/latest/         config.json + model.safetensors + training_state/ (optimizer
                                  (ACKTR: K-FAC factors, eigen-decompositions, momentum,
                                  RNG states, counters, the current observations, the frames
                                  of the attention pairs and, with --vector our, every
                                  emulator's state), replaced atomically
      eval.json                   the final evaluation and the history of evaluations

Frames: each agent step is 4 emulator frames (frame skip); ``step`` counts agent steps
summed over the environments, ``fps`` counts emulator frames per second.

Scores are those of whole games, unclipped: during training summed between ``game_over``
flags of the training environments (all lives, rewards before clipping); in evaluation on
separate environments with preset ``atari-eval`` (our adapter whatever the training
backend; the policy samples its actions unless ``eval_deterministic``).

Exact resume: with ``vector="our"`` on the CPU, N updates in one go and N/2 + resume + N/2
give bitwise the same weights: the action sampling (a torch.Generator), the pair sampling (a
NumPy generator) and every emulator are restored. ale-py's native vector env cannot snapshot
its emulators, so with ``native`` a resumed run restores everything but the games, which
restart (seeded by the update count): it continues, but not bit for bit.
"""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from saliency_rl.algos.a2c import (
    PRETRAINED_MODES,
    A2CAgent,
    A2CConfig,
    ACKTRAgent,
    Rollout,
)
from saliency_rl.checkpoint import (
    is_checkpoint,
    load_checkpoint,
    load_training_state,
    save_checkpoint,
)
from saliency_rl.devices import resolve_device
from saliency_rl.envs.atari_vector import FRAME_SKIP, atari_game, make_atari_vector
from saliency_rl.errors import CheckpointError
from saliency_rl.models.attention import SelfSupervisedAttention, load_attention
from saliency_rl.runs import (
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    EVAL_FILE,
    METRICS_FILE,
    MetricsLog,
    RunError,
    crossed,
    new_run,
    now,
    package_versions,
    read_run,
    restart_without_checkpoint,
    resumed_config,
    run_name,
    write_json,
)

LATEST = "latest"
RECENT_GAMES = 10  # training score: mean of the last 10 finished games, as baselines' logs
EVAL_SEED = 10_000  # evaluation games are seeded EVAL_SEED + seed*1000 + i, every time alike
# Settings a resume may change without breaking exactness (they only decide when to stop,
# log, evaluate and save).
RESUMABLE_CHANGES = (
    "total_steps",
    "eval_every",
    "eval_episodes",
    "eval_max_steps",
    "checkpoint_every",
    "log_every",
)
METRIC_COLUMNS = (
    "step",
    "frames",
    "updates",
    "time",
    "fps",
    "policy_loss",
    "value_loss",
    "entropy",
    "grad_norm",
    "policy_mask_mean",
    "attention_loss",
    "reconstruction_loss",
    "autoencoder_loss",
    "mask_mean",
    "games",
    "score_mean",
    "score_max",
    "eval_score_mean",
    "eval_score_std",
    "eval_score_min",
    "eval_score_max",
    "eval_return_mean",
    "eval_return_std",
)
# Runs made before eval_return_* (the shared column names) keep their header on resume.
LEGACY_COLUMNS = METRIC_COLUMNS[:-2]
ACKTR_COLUMNS = (*METRIC_COLUMNS, "kl_scale", "kfac_skipped")


# ---------------------------------------------------------------------- attention pairs
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


# ---------------------------------------------------------------------- evaluation
def evaluate_a2c(
    agent: A2CAgent,
    env_spec: str,
    *,
    episodes: int,
    seed: int = EVAL_SEED,
    deterministic: bool = False,
    max_steps: int = 27_000,
) -> dict[str, Any]:
    """Play ``episodes`` full games (preset ``atari-eval``) in lockstep; unclipped scores.

    Game i is seeded ``seed + i``. A game still running after ``max_steps`` agent steps is
    cut and counted in ``cut``. Returns scores, lengths and their summary statistics.
    """
    from saliency_rl.envs import make_env

    envs = [make_env(env_spec, preset="atari-eval", seed=seed + i) for i in range(episodes)]
    generator = torch.Generator(agent.device).manual_seed(seed)
    try:
        obs = [env.reset(seed=seed + i)[0]["rgb"] for i, env in enumerate(envs)]
        scores, lengths = np.zeros(episodes), np.zeros(episodes, np.int64)
        active, cut = np.ones(episodes, bool), np.zeros(episodes, bool)
        agent.net.eval()
        while active.any():
            playing = np.flatnonzero(active)
            batch = torch.from_numpy(np.stack([obs[i] for i in playing])).to(agent.device)
            actions = agent.act(batch, deterministic=deterministic, generator=generator)
            for i, action in zip(playing, actions.cpu().numpy(), strict=True):
                frame, _, terminated, truncated, info = envs[i].step(int(action))
                obs[i] = frame["rgb"]
                scores[i] += info["raw_reward"]
                lengths[i] += 1
                if terminated or truncated or lengths[i] >= max_steps:
                    active[i] = False
                    cut[i] = not (terminated or truncated)
    finally:
        agent.net.train()
        for env in envs:
            env.close()
    return {
        "episodes": episodes,
        "scores": scores.tolist(),
        "lengths": lengths.tolist(),
        "cut": int(cut.sum()),
        "mean": float(scores.mean()) if episodes else None,
        "std": float(scores.std()) if episodes else None,
        "min": float(scores.min()) if episodes else None,
        "max": float(scores.max()) if episodes else None,
        "policy": "deterministic" if deterministic else "sampled",
        "env_preset": "atari-eval",
        "seed": seed,
        "max_steps": max_steps,
    }


# ---------------------------------------------------------------------- attention checkpoint
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


# ---------------------------------------------------------------------- public API
def train_a2c(
    env_spec: str,
    config: A2CConfig | None = None,
    *,
    attention_checkpoint: str | Path | None = None,
    out: str | Path | None = None,
    name: str | None = None,
    runs_root: str | Path = "runs",
    device: str | torch.device = "auto",
    preset: str = "wu2021",
    progress: bool = True,
) -> Path:
    """Train A2C (with ``config.attention``) on ``env_spec``; returns the run directory.

    Args:
        env_spec: ``atari:<Game>``.
        config: hyperparameters (default: preset ``wu2021``).
        attention_checkpoint: the pretrained module of frozen / universal / transfer.
        out: the run directory; default ``runs_root/name``.
        name: the run's name; default ``<env>__a2c-<attention>__<seed>__<time>``.
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        preset: the preset ``config`` came from, recorded in config.json.
        progress: show a progress bar on stderr.

    Raises:
        EnvSpecError: not an Atari game. RunError: a bad setting, or the run exists.
        CheckpointError: the attention checkpoint is missing, damaged or mislabelled.
    """
    config = (config or A2CConfig()).validate()
    algo = config.algo
    game = atari_game(env_spec)
    spec = f"atari:{game}"
    torch_device = resolve_device(device)
    module, attention = pretrained_attention(
        config.attention, attention_checkpoint, game, torch_device
    )
    if out is None:
        out = Path(runs_root) / (name or run_name(spec, f"{algo}-{config.attention}", config.seed))
    header = {
        "algo": algo,
        "env": spec,
        # evaluation games are make_env(env, **env_options, seed=...)
        "env_options": {"preset": "atari-eval"},
        "seed": config.seed,
        "method": f"{algo}-{config.attention}",
        "preset": preset,
        "config": config.to_json(),
        "attention": attention,
        "frames_per_step": FRAME_SKIP,
        "device": str(torch_device),
        "created": now(),
        "command": " ".join(sys.argv),
        "versions": package_versions("ale-py", "gymnasium", "numpy"),
    }
    with new_run(out) as run_dir:  # removed again if the trainer cannot be built
        write_json(run_dir / CONFIG_FILE, header)
        trainer = _Trainer(run_dir, spec, config, torch_device, module, progress)
    return trainer.run()


def train_acktr(
    env_spec: str,
    config: A2CConfig | None = None,
    *,
    preset: str = "acktr",
    **kwargs: Any,
) -> Path:
    """Train ACKTR on ``env_spec``; as :func:`train_a2c`, default config preset ``acktr``."""
    from saliency_rl.algos.a2c import A2C_PRESETS

    config = config or A2C_PRESETS["acktr"]
    if config.algo != "acktr":
        raise RunError(f"train_acktr needs a config with algo 'acktr', not {config.algo!r}")
    return train_a2c(env_spec, config, preset=preset, **kwargs)


def resume_acktr(run_dir: str | Path, **kwargs: Any) -> Path:
    """Continue an ACKTR run; as :func:`resume_a2c`."""
    return resume_a2c(run_dir, algo="acktr", **kwargs)


def resume_a2c(
    run_dir: str | Path,
    *,
    env_spec: str | None = None,
    device: str | torch.device = "auto",
    progress: bool = True,
    algo: str | None = None,
    **changes: Any,
) -> Path:
    """Continue a run from its latest checkpoint; returns the run directory.

    ``changes`` are A2CConfig fields; those of RESUMABLE_CHANGES may differ from the run's
    (e.g. ``total_steps`` to train longer), the others must equal them; None values are
    ignored, as is ``env_spec`` when None. ``algo`` (a2c, acktr): the run must be of it;
    None takes either. See the module docstring on exactness.
    """
    run_dir = Path(run_dir)
    saved = read_run(run_dir, (algo,) if algo else ("a2c", "acktr"), resuming=True)
    if env_spec is not None and atari_game(env_spec) != atari_game(saved["env"]):
        raise RunError(f"{run_dir} trains on {saved['env']}, not {env_spec}")
    checkpoint = run_dir / CHECKPOINTS_DIR / LATEST
    old = A2CConfig.from_json(saved["config"])
    config = resumed_config(run_dir, saved, old, changes, RESUMABLE_CHANGES)
    torch_device = resolve_device(device)
    resuming = is_checkpoint(checkpoint)
    module = None
    if not resuming:  # killed before its first checkpoint: from step 0, the recorded module
        recorded = (saved.get("attention") or {}).get("checkpoint")
        module, _ = pretrained_attention(
            config.attention, recorded, atari_game(saved["env"]), torch_device
        )
        restart_without_checkpoint(run_dir)
    elif config.attention in PRETRAINED_MODES:  # the fixed module's weights are in the run's
        _, weights = load_checkpoint(checkpoint, torch_device)
        module = SelfSupervisedAttention(1).to(torch_device)
        prefix = "attention."
        module.load_state_dict(
            {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
        )
    trainer = _Trainer(run_dir, saved["env"], config, torch_device, module, progress)
    if resuming:
        trainer.restore(checkpoint)
    return trainer.run()


class A2CPolicy:
    """A trained A2C/ACKTR actor-critic playing one game (the shared Policy interface).

    Observations are those of ``make_env(run's env, **env_options)``: ``obs["rgb"]`` uint8
    (4, 84, 84), four stacked grey frames (the frame stack lives in the env, so
    :meth:`reset` has nothing to clear).
    """

    def __init__(self, net: torch.nn.Module, device: torch.device, seed: int = 0) -> None:
        self.net, self.device = net.eval(), device
        self.generator = torch.Generator(device).manual_seed(seed)

    def reset(self) -> None:
        """A new episode: nothing to clear (no recurrent state)."""

    def _frames(self, obs: dict) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(obs["rgb"]))[None].to(self.device)

    @torch.no_grad()
    def act(self, obs: dict, deterministic: bool = True) -> np.ndarray:
        """One observation dict -> the action (a 0-d int64 array)."""
        logits, _, _ = self.net(self._frames(obs))
        if deterministic:
            action = logits.argmax(-1)
        else:
            action = torch.multinomial(torch.softmax(logits, -1), 1, generator=self.generator)
        return np.asarray(int(action.reshape(-1)[0]), dtype=np.int64)

    @torch.no_grad()
    def saliency(self, obs: dict) -> np.ndarray | None:
        """The attention mask of the newest frame, upsampled to the frame's (H, W), in [0, 1];
        None for attention mode ``none``."""
        frames = self._frames(obs)
        mask = self.net.mask(frames)
        if mask is None:
            return None
        size = tuple(frames.shape[-2:])
        up = torch.nn.functional.interpolate(mask, size=size, mode="bilinear", align_corners=False)
        return up[0, 0].clamp(0, 1).cpu().numpy()


def load_policy(run_dir: str | Path, device: str | torch.device = "cpu") -> A2CPolicy:
    """The latest weights of an A2C or ACKTR run as an :class:`A2CPolicy`."""
    from saliency_rl.algos.a2c import ActorCritic

    checkpoint = Path(run_dir) / CHECKPOINTS_DIR / LATEST
    if not is_checkpoint(checkpoint):
        raise RunError(f"{run_dir} has no checkpoint to load a policy from ({checkpoint})")
    torch_device = resolve_device(device)
    config, weights = load_checkpoint(checkpoint, torch_device)
    kwargs = config["kwargs"]
    net = ActorCritic(kwargs["num_actions"], attention=kwargs["attention"])
    net.load_state_dict(weights)
    seed = int(config.get("a2c", {}).get("seed", 0))
    return A2CPolicy(net.to(torch_device), torch_device, seed)


# ---------------------------------------------------------------------- the loop
class _Trainer:
    """Rollouts, updates, logs, evaluations and checkpoints of one run."""

    def __init__(
        self,
        run_dir: Path,
        spec: str,
        config: A2CConfig,
        device: torch.device,
        attention_module: Any,
        progress: bool,
    ) -> None:
        self.run_dir, self.spec, self.config, self.device = run_dir, spec, config, device
        self.progress = progress
        c = config
        torch.manual_seed(c.seed)  # network initialisation
        self.env = make_atari_vector(
            spec, c.num_envs, backend=c.vector, training=True, groups=c.vector_groups
        )
        extra: dict[str, Any] = {}
        if c.algo == "acktr":
            extra = {
                "kfac_momentum": c.kfac_momentum,
                "kfac_stat_decay": c.kfac_stat_decay,
                "kfac_damping": c.kfac_damping,
                "kfac_kl_clip": c.kfac_kl_clip,
                "kfac_eigen_every": c.kfac_eigen_every,
                "kfac_stats_every": c.kfac_stats_every,
                "vf_fisher_coef": c.vf_fisher_coef,
                "attention_lr": c.attention_lr,
                "seed": c.seed,
            }
        self.agent = (ACKTRAgent if c.algo == "acktr" else A2CAgent)(
            self.env.num_actions,
            attention=c.attention,
            pretrained_attention=attention_module,
            device=device,
            hidden_size=c.hidden_size,
            learning_rate=c.learning_rate,
            rmsprop_alpha=c.rmsprop_alpha,
            rmsprop_eps=c.rmsprop_eps,
            gamma=c.gamma,
            entropy_coef=c.entropy_coef,
            value_coef=c.value_coef,
            max_grad_norm=c.max_grad_norm,
            attention_coef=c.attention_coef,
            attention_threshold=c.attention_threshold,
            attention_sparsity=c.attention_sparsity,
            **extra,
        )
        self.generator = torch.Generator(device).manual_seed(c.seed)  # actions
        self.rng = np.random.default_rng(c.seed)  # attention pairs
        self.frames = (
            RecentFrames(c.attention_buffer, c.num_envs, device)
            if self.agent.trains_attention
            else None
        )
        self.columns = _columns(run_dir / METRICS_FILE, c.algo)
        self.metrics = MetricsLog(run_dir / METRICS_FILE, self.columns)
        self.updates = 0
        self.returns = np.zeros(c.num_envs)  # raw score of each env's current game
        self.recent_scores: deque[float] = deque(maxlen=RECENT_GAMES)
        self.games = 0
        self.evaluations: list[dict[str, Any]] = []
        self.pending: dict[str, list[float]] = {}  # update metrics since the last log row
        self.obs = self._start(c.seed)

    @property
    def step(self) -> int:
        return self.updates * self.config.steps_per_update

    def _start(self, seed: int) -> torch.Tensor:
        obs = torch.from_numpy(self.env.reset(seed)).to(self.device)
        self.returns[:] = 0.0
        if self.frames is not None:
            self.frames.add(obs[:, -1], np.ones(self.config.num_envs, bool))
        return obs

    # -------------------------------------------------------------- checkpoints
    def checkpoint(self) -> None:
        env_state = self.env.get_state()
        state = {
            "updates": self.updates,
            "step": self.step,
            "optimizer": self.agent.optimizer_state(),
            "generator": self.generator.get_state(),
            "numpy_rng": self.rng.bit_generator.state,
            "obs": self.obs.cpu(),
            "env": _storable(env_state),
            "frames": self.frames.state() if self.frames is not None else None,
            "returns": self.returns.tolist(),
            "recent_scores": list(self.recent_scores),
            "games": self.games,
            "evaluations": self.evaluations,
            "pending": self.pending,
        }
        config = {
            "model": "A2CActorCritic",
            "algo": self.config.algo,
            "kwargs": {"num_actions": self.env.num_actions, "attention": self.config.attention},
            "env": self.spec,
            "step": self.step,
            "a2c": self.config.to_json(),
        }
        save_checkpoint(
            self.run_dir / CHECKPOINTS_DIR / LATEST, config, self.agent.net.state_dict(), state
        )

    def restore(self, checkpoint: Path) -> None:
        _, weights = load_checkpoint(checkpoint, self.device)
        state = load_training_state(checkpoint, self.device)
        if state is None:
            raise CheckpointError(f"{checkpoint} has no training state to resume from")
        self.agent.net.load_state_dict(weights)
        self.agent.load_optimizer_state(state["optimizer"])
        self.generator.set_state(state["generator"].cpu())
        self.rng.bit_generator.state = state["numpy_rng"]
        self.updates = int(state["updates"])
        if state["env"] is not None and self.env.get_state() is not None:
            self.env.set_state(state["env"])
            self.obs = state["obs"].to(self.device)
            self.returns = np.asarray(state["returns"], np.float64)
        else:  # the games cannot be restored: new ones, seeded by the update count
            self.obs = self._start(self.config.seed + 7919 * self.updates)
        if self.frames is not None and state["frames"] is not None:
            self.frames.load(state["frames"])
            if state["env"] is None or self.env.get_state() is None:
                self.frames.run[:] = 1  # the restarted games share no frames with the old ones
        self.recent_scores.extend(float(s) for s in state["recent_scores"])
        self.games = int(state["games"])
        self.evaluations = list(state["evaluations"])
        self.pending = {k: [float(x) for x in v] for k, v in state["pending"].items()}
        self.metrics.truncate(self.step)  # rows logged after the checkpoint come again

    # -------------------------------------------------------------- rollouts and updates
    def rollout(self) -> Rollout:
        """num_steps steps of every env. With several env groups (native backend), one
        group's emulators run while the network picks the next group's actions: the same
        transitions as stepping all envs together, in less time."""
        c, groups = self.config, self.env.groups
        obs = torch.empty((c.num_steps + 1, *self.obs.shape), dtype=torch.uint8, device=self.device)
        actions = torch.empty(c.num_steps, c.num_envs, dtype=torch.int64, device=self.device)
        rewards = np.empty((c.num_steps, c.num_envs), np.float32)
        dones = np.empty((c.num_steps, c.num_envs), np.float32)
        game_over = np.zeros(c.num_envs, bool)
        logits: list[list[torch.Tensor]] = [[] for _ in range(c.num_steps)]
        values: list[list[torch.Tensor]] = [[] for _ in range(c.num_steps)]
        for t in range(c.num_steps + 1):
            for index, group in enumerate(groups):
                if t > 0:  # the group's step t - 1
                    result = self.env.recv(index)
                    self.obs[group] = torch.from_numpy(result.obs).to(self.device)
                    rewards[t - 1, group], dones[t - 1, group] = result.reward, result.done
                    game_over[group] = result.game_over
                    self._count_scores(result, group.start)
                if t == c.num_steps:
                    continue
                obs[t, group] = self.obs[group]
                action, step_logits, step_values, mask = self.agent.explore(
                    self.obs[group], self.generator
                )
                actions[t, group] = action
                logits[t].append(step_logits)
                values[t].append(step_values)
                if mask is not None:
                    self.pending.setdefault("policy_mask_mean", []).append(
                        float(mask.detach().mean())
                    )
                self.env.send(index, action.cpu().numpy())
            if t > 0 and self.frames is not None:  # every group has done step t - 1
                self.frames.add(self.obs[:, -1], game_over)
        obs[-1] = self.obs
        return Rollout(
            obs=obs,
            actions=actions,
            rewards=torch.from_numpy(rewards).to(self.device),
            dones=torch.from_numpy(dones).to(self.device),
            logits=torch.stack([torch.cat(step) for step in logits]),
            values=torch.stack([torch.cat(step) for step in values]),
        )

    def _count_scores(self, result: Any, offset: int) -> None:
        """Add the raw points; a finished game's score joins the recent scores."""
        returns = self.returns[offset : offset + len(result.raw_reward)]  # a view
        returns += result.raw_reward
        for i in np.flatnonzero(result.game_over):
            self.recent_scores.append(float(returns[i]))
            returns[i] = 0.0
            self.games += 1

    def run(self) -> Path:
        c = self.config
        total_updates = math.ceil(c.total_steps / c.steps_per_update)
        bar = tqdm(
            total=total_updates * c.steps_per_update,
            initial=self.step,
            unit="step",
            unit_scale=True,
            disable=not self.progress,
            desc=f"{c.algo} {self.spec} {c.attention}",
            dynamic_ncols=True,
            mininterval=1.0,
        )
        last_time, last_step = time.perf_counter(), self.step
        try:
            with bar:
                while self.updates < total_updates:
                    rollout = self.rollout()
                    pairs = self.frames.sample(self.rng) if self.frames is not None else None
                    for key, value in self.agent.update(rollout, pairs).items():
                        self.pending.setdefault(key, []).append(value)
                    before = self.step
                    self.updates += 1
                    bar.update(c.steps_per_update)
                    finished = self.updates == total_updates
                    if crossed(before, self.step, c.log_every) or finished:
                        elapsed = time.perf_counter() - last_time
                        fps = FRAME_SKIP * (self.step - last_step) / max(elapsed, 1e-9)
                        last_time, last_step = time.perf_counter(), self.step
                        self.log(fps)
                        bar.set_postfix(fps=f"{fps:.0f}", score=self._score_text(), refresh=False)
                    if (c.eval_every and crossed(before, self.step, c.eval_every)) or finished:
                        self.evaluate()
                    if crossed(before, self.step, c.checkpoint_every) or finished:
                        self.checkpoint()
        finally:
            self.env.close()
        self.write_eval()
        return self.run_dir

    def _score_text(self) -> str:
        return f"{np.mean(self.recent_scores):.1f}" if self.recent_scores else "-"

    # -------------------------------------------------------------- logs and evaluations
    def log(self, fps: float) -> None:
        row: dict[str, Any] = {
            "step": self.step,
            "frames": FRAME_SKIP * self.step,
            "updates": self.updates,
            "time": now(),
            "fps": fps,
            "games": self.games,
        }
        for key, values in self.pending.items():
            if key == "kfac_skipped":  # a running count: its latest value
                row[key] = float(values[-1])
            elif key in self.columns:
                finite = [v for v in values if math.isfinite(v)]
                row[key] = float(np.mean(finite)) if finite else None
        if self.recent_scores:
            row["score_mean"] = float(np.mean(self.recent_scores))
            row["score_max"] = float(np.max(self.recent_scores))
        self.metrics.log(row)
        self.pending = {}

    def evaluate(self) -> None:
        c = self.config
        if c.eval_episodes == 0:
            return
        result = evaluate_a2c(
            self.agent,
            self.spec,
            episodes=c.eval_episodes,
            seed=EVAL_SEED + 1000 * c.seed,
            deterministic=c.eval_deterministic,
            max_steps=c.eval_max_steps,
        )
        result = {"step": self.step, "frames": FRAME_SKIP * self.step, **result}
        self.evaluations = [e for e in self.evaluations if e["step"] != self.step] + [result]
        self.metrics.log(
            {
                "step": self.step,
                "frames": FRAME_SKIP * self.step,
                "updates": self.updates,
                "time": now(),
                **{f"eval_score_{k}": result[k] for k in ("mean", "std", "min", "max")},
                **(
                    {"eval_return_mean": result["mean"], "eval_return_std": result["std"]}
                    if "eval_return_mean" in self.columns
                    else {}
                ),
            }
        )

    def write_eval(self) -> None:
        final = self.evaluations[-1] if self.evaluations else None
        if final is not None:  # the shared names of every trainer's eval.json
            final = {**final, "return_mean": final["mean"], "return_std": final["std"]}
        write_json(
            self.run_dir / EVAL_FILE,
            {
                "env": self.spec,
                "algo": self.config.algo,
                "attention": self.config.attention,
                "step": self.step,
                "frames": FRAME_SKIP * self.step,
                "final": final,
                "history": [
                    {k: e[k] for k in ("step", "frames", "mean", "std", "min", "max", "cut")}
                    for e in self.evaluations
                ],
                "training_scores": {"games": self.games, "recent": list(self.recent_scores)},
            },
        )


def _columns(path: Path, algo: str) -> tuple[str, ...]:
    """metrics.csv columns: ACKTR's, A2C's, or the header of an older A2C run's file."""
    if algo == "acktr":
        return ACKTR_COLUMNS
    if path.is_file() and path.stat().st_size > 0:
        with path.open() as handle:
            if handle.readline().strip() == ",".join(LEGACY_COLUMNS):
                return LEGACY_COLUMNS
    return METRIC_COLUMNS


def _storable(value: Any) -> Any:
    """NumPy arrays and scalars -> tensors and Python numbers, for the training state."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(v) for v in value]
    return value
