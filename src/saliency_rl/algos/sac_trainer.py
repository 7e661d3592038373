"""Train SAC from pixels: ``saliency-rl train sac --env dmc:cartpole-swingup --encoder cnn``.

:func:`train_sac` starts a run, :func:`resume_sac` continues one
(``sac_policy.load_policy`` loads its policy, ``sac_setup`` builds its parts). The run directory::

    runs/<env>__<method>__<seed>__<time>/
      config.json         algo, env, env_options (for make_env), seed, method, SACConfig,
                          preset, the predictor and MultiMAE checkpoints used, versions
      metrics.csv         every log_every steps: losses, temperature, training returns; a
                          row per evaluation (eval_return_mean / std, eval_success_rate)
      tb/                 the same as TensorBoard events
      checkpoints/latest/ config.json + model.safetensors + training_state/ (optimisers,
                          replay buffer, RNG states, counters), replaced atomically
      eval.json           written last, when the run finished: final and past evaluations

``step`` counts agent steps (policy decisions); ``frames`` = step * action repeat counts
simulator steps, the unit of the DMC "100k" benchmark.

Exact resume: episode i of training is reset with seed ``seed * 100_003 + i``, so an
environment never needs its simulator state saved: checkpoints are written between
episodes (at the end of the episode that crosses ``checkpoint_every``). A resume from such a
checkpoint replays the same steps bit for bit on the CPU: same weights, same metrics. The
final checkpoint of a run that stopped mid-episode (``total_steps`` reached) holds that
state too; extending such a run starts a new episode there, so it continues, but not bit
for bit. Evaluation uses its own environment and the deterministic policy: it draws from
no training random stream; episode i is reset with ``rollout.EVAL_SEED + i``.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from saliency_rl.algos.nstep import sample_nstep
from saliency_rl.algos.rollout import EVAL_SEED, run_episodes, summarize
from saliency_rl.algos.sac import SACConfig
from saliency_rl.algos.sac_inputs import StepInputs
from saliency_rl.algos.sac_policy import SACPolicy, load_policy, scale_action
from saliency_rl.algos.sac_setup import (
    PRECISION_TRIAL_BATCH,
    build_agent,
    build_inputs,
    build_replay,
    choose_sac_precision,
    env_options_for,
    eval_inputs,
    make_run_env,
)
from saliency_rl.devices import resolve_device
from saliency_rl.errors import SaliencyRLError
from saliency_rl.precision import PrecisionChoice
from saliency_rl.run_log import Averages, Cadence, RunLog, import_wandb
from saliency_rl.runs import (
    Run,
    RunError,
    evaluation_entry,
    now,
    python_rng_state,
    run_header,
    run_name,
    set_python_rng_state,
)

EPISODE_SEED = 100_003  # training episode i of seed s is reset with s * EPISODE_SEED + i
# Settings a resume may change: they decide when to stop, log, evaluate and save.
RESUMABLE_CHANGES = ("total_steps", "eval_every", "eval_episodes", "checkpoint_every", "log_every")
UPDATE_METRICS = (
    "critic_loss",
    "q_mean",
    "actor_loss",
    "alpha_loss",
    "alpha",
    "entropy",
    "curl_loss",
)
METRIC_COLUMNS = (
    "step",
    "frames",
    "episodes",
    "updates",
    "time",
    "fps",
    "episode_return",
    *UPDATE_METRICS,
    "eval_return_mean",
    "eval_return_std",
    "eval_success_rate",
    "eval_length_mean",
)


def train_sac(
    env_spec: str,
    config: SACConfig | None = None,
    *,
    env_options: dict[str, Any] | None = None,
    predictor: str | Path | None = None,
    encoder_checkpoint: str | Path | None = None,
    out: str | Path | None = None,
    name: str | None = None,
    runs_root: str | Path = "runs",
    device: str | torch.device = "auto",
    preset: str = "visarl",
    progress: bool = True,
    wandb: bool = False,
) -> Path:
    """Train SAC on ``env_spec``; returns the run directory.

    Args:
        env_spec: ``dmc:<domain>-<task>``, ``metaworld:<task>`` (or ``fake:square``).
        config: the settings (default: preset ``visarl``).
        env_options: make_env keyword arguments (image_size, frame_stack, action_repeat,
            episode_length, preset, ...); the SAC preset's env preset fills the rest
            (``env_options_for``).
        predictor: saliency predictor checkpoint, for the modes that use saliency.
        encoder_checkpoint: MultiMAE checkpoint or pretraining run, for ``multimae``.
        out: the run directory; default ``runs_root/name``.
        name: the run's name; default ``<env>__<method>__<seed>__<time>``.
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
        preset: the preset ``config`` came from (recorded, and picks the env preset).
        progress: show a progress bar on stderr.
        wandb: also log to Weights & Biases (needs the ``wandb`` package).

    Raises:
        RunError: a bad setting, a missing checkpoint for the mode, or the run exists.
        EnvSpecError: a bad env spec or option. CheckpointError / ModelError: a checkpoint
        that is missing, damaged, or of another kind or pretraining than the mode needs.
    """
    config = (config or SACConfig()).validate()
    torch_device = resolve_device(device)
    options = env_options_for(env_spec, preset, env_options)
    if wandb:
        import_wandb()
    env = make_run_env(env_spec, options)  # fails early on a bad spec or option
    try:
        if len(env.action_space.shape) != 1:
            raise RunError(f"SAC needs a continuous action vector; {env_spec} has another kind")
        inputs = build_inputs(config, env, predictor, encoder_checkpoint, torch_device, env_spec)
        if out is None:
            out = Path(runs_root) / (name or run_name(env_spec, config.method, config.seed))
        header = run_header(
            "sac", env_spec, options, config.seed, config.method, preset, config.to_json(),
            torch_device,
            versions=("numpy", "gymnasium", "dm-control", "metaworld", "mujoco"),
            predictor=str(Path(predictor).resolve()) if predictor else None,
            encoder_checkpoint=str(Path(encoder_checkpoint).resolve()) if encoder_checkpoint else None,
            wandb=wandb,
        )  # fmt: skip
        with Run.create(out, header) as run:  # removed again if the trainer cannot be built
            trainer = _Trainer(run, torch_device, progress, env=env, inputs=inputs)
    except BaseException:
        env.close()
        raise
    return trainer.run()


def resume_sac(
    run_dir: str | Path,
    *,
    device: str | torch.device = "auto",
    progress: bool = True,
    **changes: Any,
) -> Path:
    """Continue a run from its latest checkpoint (a run killed before its first checkpoint
    starts again from step 0 with its config); returns the run directory.

    ``changes`` are SACConfig fields; those of RESUMABLE_CHANGES may differ from the run's
    (e.g. ``total_steps`` to train longer), the others must equal them; None values are
    ignored.
    """
    run, _ = Run.resume(run_dir, ("sac",), SACConfig, changes, RESUMABLE_CHANGES)
    trainer = _Trainer(run, resolve_device(device), progress)
    return trainer.run(restore=run.has_checkpoint())


class _Trainer:
    """Steps, updates, logs, evaluations and checkpoints of one run (from its config.json)."""

    def __init__(
        self,
        run: Run,
        device: torch.device,
        progress: bool,
        env: Any = None,
        inputs: StepInputs | None = None,
    ) -> None:
        """``env`` and ``inputs``: already built from this run's config (train_sac checked
        the settings with them), else built here."""
        self.run_dir, self.device, self.progress = run.path, device, progress
        self.lifecycle, saved = run, run.saved
        self.spec, self.options = saved["env"], saved["env_options"]
        self.config = c = SACConfig.from_json(saved["config"]).validate()
        torch.manual_seed(c.seed)  # network initialisation
        random.seed(c.seed)
        self.env = env if env is not None else make_run_env(self.spec, self.options)
        self.low, self.high = self.env.action_space.low, self.env.action_space.high
        self.inputs = inputs or build_inputs(
            c, self.env, saved.get("predictor"), saved.get("encoder_checkpoint"), device, self.spec
        )
        self.eval_env: Any = None  # made at the first evaluation, kept for the next ones
        self.action_dim = self.env.action_space.shape[0]
        self.agent = build_agent(c, self.inputs, self.action_dim, device)
        self.precision = self._precision()
        self.agent.precision = self.precision.chosen
        self.replay = build_replay(c, self.inputs, self.action_dim)
        self.explore = torch.Generator(device).manual_seed(c.seed + 2)  # actions while training
        self.log = RunLog(run.path, METRIC_COLUMNS, wandb=saved if saved.get("wandb") else None)
        self.step = self.episodes = 0
        self.episode_return = 0.0
        self.returns: list[float] = []  # finished episodes since the last log row
        self.averages = Averages()  # update metrics since the last log row
        self.evaluations: list[dict[str, Any]] = []
        self.in_episode = False  # False between episodes: the next step resets
        self.stored: dict[str, np.ndarray] = {}  # the current observation, as stored
        # Simulator steps per agent step (every suite's env has ``action_repeat``).
        self.action_repeat = int(getattr(self.env.unwrapped, "action_repeat", 1))

    def _precision(self) -> PrecisionChoice:
        """A resumed run keeps the precision config.json records (never measured again, so
        it resumes bit for bit); a new one decides it here and records it there."""
        if self.lifecycle.saved.get("precision"):
            return PrecisionChoice.from_json(self.lifecycle.saved["precision"])
        choice = choose_sac_precision(self.config, self.agent, self.inputs, self.device)
        self.lifecycle.record(precision=choice.to_json())
        return choice

    # -------------------------------------------------------------- checkpoints
    def checkpoint(self) -> None:
        state = {
            "step": self.step,
            "episodes": self.episodes,
            "episode_return": self.episode_return,
            "in_episode": self.in_episode,
            "optimizers": self.agent.optimizer_state(),
            "explore": self.explore.get_state(),
            "torch_rng": torch.get_rng_state(),
            "python_rng": python_rng_state(),
            "replay": self.replay.state(),
            "returns": self.returns,
            "pending": self.averages.state(),
            "evaluations": self.evaluations,
        }
        config = {
            "model": "SACAgent",
            "env": self.spec,
            "step": self.step,
            "sac": self.config.to_json(),
        }
        self.lifecycle.save_checkpoint(config, self.agent.state_dict(), state)

    def restore(self) -> None:
        weights, state = self.lifecycle.load_checkpoint(self.device)
        self.agent.load_state_dict(weights)
        self.agent.load_optimizer_state(state["optimizers"])
        self.explore.set_state(state["explore"])
        torch.set_rng_state(state["torch_rng"])
        set_python_rng_state(state["python_rng"])
        self.replay.load_state(state["replay"])
        self.step, self.episodes = int(state["step"]), int(state["episodes"])
        self.returns = [float(r) for r in state["returns"]]
        self.averages.load(state["pending"])
        self.evaluations = list(state["evaluations"])
        # A run that stopped mid-episode (its total reached) continues with a new episode:
        # the simulator's state is not saved. Checkpoints between episodes resume exactly.
        self.in_episode = False
        if state["in_episode"]:
            self.episodes += 1
        self.log.rewind(self.step)  # rows logged after the checkpoint come again

    # -------------------------------------------------------------- the loop
    def _reset(self) -> None:
        obs, _ = self.env.reset(seed=self.config.seed * EPISODE_SEED + self.episodes)
        self.stored = self.inputs.first(obs)
        self.replay.start(self.stored)
        self.episode_return, self.in_episode = 0.0, True

    def _action(self) -> np.ndarray:
        if self.step < self.config.init_steps:
            uniform = torch.rand(self.action_dim, generator=self.explore, device=self.device)
            return (uniform * 2 - 1).cpu().numpy()
        batch = {k: torch.from_numpy(np.asarray(v))[None] for k, v in self.stored.items()}
        return self.agent.act(batch, deterministic=False, generator=self.explore)[0].cpu().numpy()

    def _update(self) -> None:
        c = self.config
        for _ in range(c.updates_per_step):
            batch = sample_nstep(self.replay, c.batch_size, c.nstep, c.discount, self.device)
            self.averages.add(self.agent.update(batch))

    def run(self, restore: bool = False) -> Path:
        if restore:  # resuming from the last checkpoint
            self.restore()
        c = self.config
        cadence = Cadence(
            c.total_steps, self.step, log_every=c.log_every, eval_every=c.eval_every,
            checkpoint_every=c.checkpoint_every, desc=f"sac {self.spec} {c.method}",
            progress=self.progress,
        )  # fmt: skip
        checkpoint_due = False
        try:
            with cadence, self.log:
                while self.step < c.total_steps:
                    if not self.in_episode:
                        self._reset()
                    action = self._action()
                    obs, reward, terminated, truncated, _ = self.env.step(
                        scale_action(action, self.low, self.high)
                    )
                    self.stored = self.inputs.next(obs)
                    self.replay.add(action, reward, self.stored, bool(terminated))
                    self.episode_return += float(reward)
                    self.step += 1
                    updating = self.step > c.init_steps or (c.init_steps == 0)
                    if updating and self.step % c.update_every == 0:
                        self._update()
                    if terminated or truncated:
                        self.returns.append(self.episode_return)
                        self.episodes += 1
                        self.in_episode = False
                    due = cadence.advance(self.step - 1, self.step)
                    if due.log:
                        self._log_row(cadence.speed(self.step))
                        cadence.show(episodes=self.episodes)
                    if due.evaluate:
                        self.evaluate()
                    checkpoint_due |= due.checkpoint
                    if due.finished or (checkpoint_due and not self.in_episode):
                        self.checkpoint()
                        checkpoint_due = False
        finally:
            self.env.close()
            if self.eval_env is not None:
                self.eval_env.close()
        self.lifecycle.write_eval(self.step, self.evaluations, frames=self._frames(self.step))
        return self.run_dir

    # -------------------------------------------------------------- logs and evaluations
    def _frames(self, step: int) -> int:
        return step * self.action_repeat

    def _row(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "frames": self._frames(self.step),
            "episodes": self.episodes,
            "updates": self.agent.updates,
            "time": now(),
        }

    def _log_row(self, fps: float) -> None:
        row = {**self._row(), "fps": fps, **self.averages.means()}
        if self.returns:
            row["episode_return"] = float(np.mean(self.returns))
        self.log.log(row)
        self.returns = []

    def evaluate(self) -> None:
        c = self.config
        if c.eval_episodes == 0 or any(e["step"] == self.step for e in self.evaluations):
            return
        if self.eval_env is None:
            self.eval_env = make_run_env(self.spec, self.options)
        policy = SACPolicy(self.agent, eval_inputs(self.inputs), self.low, self.high)
        # Every episode is reset with its own seed: the env's history does not matter.
        results, _ = run_episodes(self.eval_env, policy.act, c.eval_episodes, seed=EVAL_SEED)
        summary = summarize(results)
        entry = evaluation_entry(self.step, summary, frames=self._frames(self.step))
        self.evaluations.append(entry)
        row = {
            **self._row(),
            "eval_return_mean": entry["return_mean"],
            "eval_return_std": entry["return_std"],
            "eval_length_mean": summary["length_mean"],
        }
        if "success_rate" in entry:
            row["eval_success_rate"] = entry["success_rate"]
        self.log.log(row)


__all__ = [
    "PRECISION_TRIAL_BATCH",
    "SACPolicy",
    "SaliencyRLError",
    "build_agent",
    "env_options_for",
    "load_policy",
    "resume_sac",
    "train_sac",
]
