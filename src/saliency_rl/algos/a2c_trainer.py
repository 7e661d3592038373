"""Train A2C or ACKTR on an Atari game: ``saliency-rl train a2c|acktr --env atari:MsPacman``.

:func:`train_a2c` starts a run, :func:`resume_a2c` continues one; :func:`train_acktr` and
:func:`resume_acktr` do the same for ACKTR (``A2CConfig.algo == "acktr"``: the same loop,
the same losses, K-FAC instead of RMSprop, see algos.a2c.ACKTRAgent and algos.kfac).
``a2c_policy.load_policy`` loads a run's latest weights for playing and
``a2c_policy.evaluate_a2c`` plays its evaluation games. The run directory::

    runs/<env>__<algo>-<attention>__<seed>__<time>/
      config.json                 env, A2CConfig, attention mode and what its module was
                                  pretrained on, device, versions
      metrics.csv                 every log_every steps: fps, losses, training scores; and a
                                  row per evaluation (eval_* columns)
      tb/                         the same as TensorBoard events
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
backend; the policy samples its actions unless ``eval_deterministic``), game i seeded
``rollout.EVAL_SEED + i``.

Exact resume: with ``vector="our"`` on the CPU, N updates in one go and N/2 + resume + N/2
give bitwise the same weights: the action sampling (a torch.Generator), the pair sampling (a
NumPy generator) and every emulator are restored. ale-py's native vector env cannot snapshot
its emulators, so with ``native`` a resumed run restores everything but the games, which
restart (seeded by the update count): it continues, but not bit for bit.
"""

from __future__ import annotations

import math
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch

from saliency_rl.algos.a2c import PRETRAINED_MODES, A2CConfig, Rollout, build_agent
from saliency_rl.algos.a2c_attention import RecentFrames, pretrained_attention
from saliency_rl.algos.a2c_masks import MASK_COLUMNS, mask_statistics, save_policy_masks
from saliency_rl.algos.a2c_policy import A2CPolicy, evaluate_a2c, load_policy
from saliency_rl.devices import resolve_device
from saliency_rl.envs.atari_vector import FRAME_SKIP, atari_game, make_atari_vector
from saliency_rl.models.attention import SelfSupervisedAttention
from saliency_rl.precision import PrecisionChoice, decide_precision
from saliency_rl.run_log import Averages, Cadence, RunLog
from saliency_rl.runs import (
    METRICS_FILE,
    Run,
    RunError,
    evaluation_entry,
    now,
    run_header,
    run_name,
)

RECENT_GAMES = 10  # training score: mean of the last 10 finished games, as baselines' logs
# Settings a resume may change without breaking exactness (they only decide when to stop,
# log, evaluate and save).
RESUMABLE_CHANGES = (
    "total_steps", "eval_every", "eval_episodes", "eval_max_steps", "checkpoint_every", "log_every",
)  # fmt: skip
METRIC_COLUMNS = (
    "step", "frames", "updates", "time", "fps",
    "policy_loss", "value_loss", "entropy", "grad_norm", "policy_mask_mean",
    "attention_loss", "reconstruction_loss", "autoencoder_loss", "mask_mean",
    "games", "score_mean", "score_max",
    "eval_score_mean", "eval_score_std", "eval_score_min", "eval_score_max",
    "eval_return_mean", "eval_return_std",
)  # fmt: skip
# Older runs keep their header on resume (see _columns): those before eval_return_* and
# before the mask statistics.
ACKTR_COLUMNS = (*METRIC_COLUMNS, "kl_scale", "kfac_skipped", *MASK_COLUMNS)
METRIC_COLUMNS = (*METRIC_COLUMNS, *MASK_COLUMNS)


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
    header = run_header(
        algo,
        spec,
        {"preset": "atari-eval"},  # evaluation games are make_env(env, **env_options, seed=...)
        config.seed,
        f"{algo}-{config.attention}",
        preset,
        config.to_json(),
        torch_device,
        versions=("ale-py", "gymnasium", "numpy"),
        attention=attention,
        frames_per_step=FRAME_SKIP,
    )
    with Run.create(out, header) as run:  # removed again if the trainer cannot be built
        trainer = _Trainer(run, spec, config, torch_device, module, progress)
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

    def same_game(saved: dict[str, Any]) -> None:
        if env_spec is not None and atari_game(env_spec) != atari_game(saved["env"]):
            raise RunError(f"{run_dir} trains on {saved['env']}, not {env_spec}")

    algos = (algo,) if algo else ("a2c", "acktr")
    run, config = Run.resume(run_dir, algos, A2CConfig, changes, RESUMABLE_CHANGES, same_game)
    saved, torch_device = run.saved, resolve_device(device)
    resuming = run.has_checkpoint()
    module = None
    if not resuming:  # killed before its first checkpoint: from step 0, the recorded module
        recorded = (saved.get("attention") or {}).get("checkpoint")
        module, _ = pretrained_attention(
            config.attention, recorded, atari_game(saved["env"]), torch_device
        )
    elif config.attention in PRETRAINED_MODES:  # the fixed module's weights are in the run's
        _, weights = run.load_model(torch_device)
        module = SelfSupervisedAttention(1).to(torch_device)
        prefix = "attention."
        module.load_state_dict(
            {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
        )
    trainer = _Trainer(run, saved["env"], config, torch_device, module, progress)
    return trainer.run(restore=resuming)


# ---------------------------------------------------------------------- the loop
class _Trainer:
    """Rollouts, updates, logs, evaluations and checkpoints of one run."""

    def __init__(
        self,
        run: Run,
        spec: str,
        config: A2CConfig,
        device: torch.device,
        attention_module: Any,
        progress: bool,
    ) -> None:
        self.lifecycle, self.run_dir = run, run.path
        self.spec, self.config, self.device = spec, config, device
        self.progress = progress
        c = config
        torch.manual_seed(c.seed)  # network initialisation
        self.env = make_atari_vector(
            spec, c.num_envs, backend=c.vector, training=True, groups=c.vector_groups
        )
        self.agent = build_agent(c, self.env.num_actions, attention_module, device)
        self.precision = self._precision()
        self.agent.net.precision = self.precision.chosen
        self.generator = torch.Generator(device).manual_seed(c.seed)  # actions
        self.rng = np.random.default_rng(c.seed)  # attention pairs
        self.frames = (
            RecentFrames(c.attention_buffer, c.num_envs, device)
            if self.agent.trains_attention
            else None
        )
        self.columns = _columns(run.path / METRICS_FILE, c.algo)
        self.log = RunLog(run.path, self.columns)
        self.updates = 0
        self.returns = np.zeros(c.num_envs)  # raw score of each env's current game
        self.recent_scores: deque[float] = deque(maxlen=RECENT_GAMES)
        self.games = 0
        self.evaluations: list[dict[str, Any]] = []
        self.averages = Averages()  # update metrics since the last log row
        self.kfac_skipped: float | None = None  # ACKTR's running count: its latest value
        self.obs = self._start(c.seed)

    @property
    def step(self) -> int:
        return self.updates * self.config.steps_per_update

    def _precision(self) -> PrecisionChoice:
        """A resumed run keeps the precision config.json records (never measured again, so it
        resumes bit for bit); a new one decides it here and records it there."""
        c = self.config
        batch = c.num_envs * c.num_steps
        name = (f"actor-critic ({c.attention} attention) forward and backward, batch {batch}"
                f"{' + 16 frame pairs' if self.agent.trains_attention else ''}, torch threads "
                f"{torch.get_num_threads()}")  # fmt: skip
        choice = decide_precision(
            c.precision, self.device, lambda: self.agent.precision_trial(batch),
            recorded=self.lifecycle.saved.get("precision"), trial_name=name,
        )  # fmt: skip
        if not self.lifecycle.saved.get("precision"):
            self.lifecycle.record(precision=choice.to_json())
        return choice

    def _start(self, seed: int) -> torch.Tensor:
        obs = torch.from_numpy(self.env.reset(seed)).to(self.device)
        self.returns[:] = 0.0
        if self.frames is not None:
            self.frames.add(obs[:, -1], np.ones(self.config.num_envs, bool))
        return obs

    # -------------------------------------------------------------- checkpoints
    def checkpoint(self) -> None:
        state = {
            "updates": self.updates,
            "step": self.step,
            "optimizer": self.agent.optimizer_state(),
            "generator": self.generator.get_state(),
            "numpy_rng": self.rng.bit_generator.state,
            "obs": self.obs.cpu(),
            "env": self.env.get_state(),  # NumPy arrays: stored as tensors
            "frames": self.frames.state() if self.frames is not None else None,
            "returns": self.returns.tolist(),
            "recent_scores": list(self.recent_scores),
            "games": self.games,
            "evaluations": self.evaluations,
            "pending": {
                **self.averages.state(),
                **({"kfac_skipped": [self.kfac_skipped]} if self.kfac_skipped is not None else {}),
            },
        }
        config = {
            "model": "A2CActorCritic",
            "algo": self.config.algo,
            "kwargs": {"num_actions": self.env.num_actions, "attention": self.config.attention},
            "env": self.spec,
            "step": self.step,
            "a2c": self.config.to_json(),
        }
        self.lifecycle.save_checkpoint(config, self.agent.net.state_dict(), state)
        if self.config.attention != "none":  # the mask over time, for the report
            save_policy_masks(self.run_dir, self.step, self.agent.net, self.obs)

    def restore(self) -> None:
        weights, state = self.lifecycle.load_checkpoint(self.device)
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
        self.evaluations = [_upgraded(e) for e in state["evaluations"]]
        pending = dict(state["pending"])
        skipped = pending.pop("kfac_skipped", None)
        self.kfac_skipped = float(skipped[-1]) if skipped else None
        self.averages.load(pending)
        self.log.rewind(self.step)  # rows logged after the checkpoint come again

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
                    self.averages.add(
                        {"policy_mask_mean": float(mask.detach().mean()), **mask_statistics(mask)}
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

    def run(self, restore: bool = False) -> Path:
        if restore:  # resuming from the last checkpoint
            self.restore()
        c = self.config
        total_updates = math.ceil(c.total_steps / c.steps_per_update)
        cadence = Cadence(
            total_updates * c.steps_per_update, self.step, log_every=c.log_every,
            eval_every=c.eval_every, checkpoint_every=c.checkpoint_every,
            desc=f"{c.algo} {self.spec} {c.attention}", progress=self.progress, unit_scale=True,
        )  # fmt: skip
        try:
            with cadence, self.log:
                while self.updates < total_updates:
                    rollout = self.rollout()
                    pairs = self.frames.sample(self.rng) if self.frames is not None else None
                    metrics = self.agent.update(rollout, pairs)
                    if "kfac_skipped" in metrics:
                        self.kfac_skipped = float(metrics.pop("kfac_skipped"))
                    self.averages.add(metrics)
                    before = self.step
                    self.updates += 1
                    due = cadence.advance(before, self.step)
                    if due.log:
                        fps = FRAME_SKIP * cadence.speed(self.step)
                        self._log_row(fps)
                        cadence.show(fps=f"{fps:.0f}", score=self._score_text())
                    if due.evaluate:
                        self.evaluate()
                    if due.checkpoint:
                        self.checkpoint()
        finally:
            self.env.close()
        self.lifecycle.write_eval(
            self.step,
            self.evaluations,
            frames=FRAME_SKIP * self.step,
            attention=self.config.attention,
            training_scores={"games": self.games, "recent": list(self.recent_scores)},
        )
        return self.run_dir

    def _score_text(self) -> str:
        return f"{np.mean(self.recent_scores):.1f}" if self.recent_scores else "-"

    # -------------------------------------------------------------- logs and evaluations
    def _log_row(self, fps: float) -> None:
        row: dict[str, Any] = {
            "step": self.step,
            "frames": FRAME_SKIP * self.step,
            "updates": self.updates,
            "time": now(),
            "fps": fps,
            "games": self.games,
        }
        means = self.averages.means(finite_only=True)
        row.update({k: v for k, v in means.items() if k in self.columns})
        if self.kfac_skipped is not None and "kfac_skipped" in self.columns:
            row["kfac_skipped"] = self.kfac_skipped
        if self.recent_scores:
            row["score_mean"] = float(np.mean(self.recent_scores))
            row["score_max"] = float(np.max(self.recent_scores))
        self.log.log(row)

    def evaluate(self) -> None:
        c = self.config
        if c.eval_episodes == 0:
            return
        summary = evaluate_a2c(
            self.agent,
            self.spec,
            episodes=c.eval_episodes,
            deterministic=c.eval_deterministic,
            max_steps=c.eval_max_steps,
        )
        keep = ("cut", "min", "max", "policy", "env_preset", "seed", "max_steps")
        entry = evaluation_entry(
            self.step, summary, frames=FRAME_SKIP * self.step, **{k: summary[k] for k in keep}
        )
        self.evaluations = [e for e in self.evaluations if e["step"] != self.step] + [entry]
        scores = {"mean": "return_mean", "std": "return_std", "min": "min", "max": "max"}
        row = {
            "step": self.step,
            "frames": FRAME_SKIP * self.step,
            "updates": self.updates,
            "time": now(),
            **{f"eval_score_{k}": entry[key] for k, key in scores.items()},
        }
        if "eval_return_mean" in self.columns:
            row.update(eval_return_mean=entry["return_mean"], eval_return_std=entry["return_std"])
        self.log.log(row)


def _upgraded(entry: dict[str, Any]) -> dict[str, Any]:
    """An evaluation of a checkpoint written before the one eval.json format (``mean``,
    ``std``, ``scores``) in today's names."""
    if "return_mean" in entry or "mean" not in entry:
        return entry
    old = dict(entry)
    new = {"step": old.pop("step"), "frames": old.pop("frames", None)}
    new.update(return_mean=old.pop("mean"), return_std=old.pop("std"))
    new.update(episodes=old.pop("episodes", None), returns=old.pop("scores", []))
    new.update(lengths=old.pop("lengths", []), **old)
    return new


def _columns(path: Path, algo: str) -> tuple[str, ...]:
    """metrics.csv columns: ACKTR's or A2C's, or the header of an older run's file (the
    columns of its day, a prefix of today's: its rows leave the newer metrics out)."""
    columns = ACKTR_COLUMNS if algo == "acktr" else METRIC_COLUMNS
    if path.is_file() and path.stat().st_size > 0:
        with path.open() as handle:
            header = tuple(handle.readline().strip().split(","))
        if header == columns[: len(header)]:
            return header
    return columns


__all__ = [
    "A2CPolicy",
    "evaluate_a2c",
    "load_policy",
    "resume_a2c",
    "resume_acktr",
    "train_a2c",
    "train_acktr",
]
