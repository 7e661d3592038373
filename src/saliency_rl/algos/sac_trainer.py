"""Train SAC from pixels: ``saliency-rl train sac --env dmc:cartpole-swingup --encoder cnn``.

:func:`train_sac` starts a run, :func:`resume_sac` continues one, :func:`load_policy`
loads its policy for evaluation. The run directory::

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
no training random stream.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from saliency_rl.algos.nstep import sample_nstep
from saliency_rl.algos.sac import (
    ENV_PRESETS,
    PixelObsEncoder,
    SACAgent,
    SACConfig,
    VectorObsEncoder,
)
from saliency_rl.algos.sac_inputs import StepInputs
from saliency_rl.checkpoint import (
    is_checkpoint,
    load_checkpoint,
    load_training_state,
    save_checkpoint,
)
from saliency_rl.devices import resolve_device
from saliency_rl.errors import CheckpointError, SaliencyRLError
from saliency_rl.evaluation import run_episodes, summarize
from saliency_rl.models.pixel_cnn import PixelCNN
from saliency_rl.precision import PrecisionChoice, choose_precision
from saliency_rl.runs import (
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    EVAL_FILE,
    METRICS_FILE,
    TENSORBOARD_DIR,
    MetricsLog,
    RunError,
    crossed,
    new_run,
    now,
    package_versions,
    python_rng_state,
    read_run,
    restart_without_checkpoint,
    resumed_config,
    run_name,
    set_python_rng_state,
    write_json,
)

LATEST = "latest"
EPISODE_SEED = 100_003  # training episode i of seed s is reset with s * EPISODE_SEED + i
EVAL_SEED = 10_000  # evaluation episode i is reset with EVAL_SEED + 1000 * seed + i
# precision auto times the networks at the run's batch size up to this: about 3 s for the
# drq networks at 84x84 on one CPU thread, and the same winner as at batch 512 (bf16 2.0x
# faster at 64, 3.0x at 512 here; benchmarks/results/sac_speed_drq.md).
PRECISION_TRIAL_BATCH = 64
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


# ---------------------------------------------------------------------- building blocks
def env_options_for(spec: str, preset: str, env_options: dict[str, Any] | None) -> dict:
    """make_env options: the caller's, with the env preset the SAC preset implies for this
    suite (visarl -> visarl-dmc / visarl-metaworld, rad-curl-100k -> dmc-100k) unless the
    caller named one (``"preset": None`` asks for none)."""
    from saliency_rl.envs import parse_spec

    options = dict(env_options or {})
    if "preset" not in options:
        implied = ENV_PRESETS.get(preset, {}).get(parse_spec(spec).suite)
        if implied:
            options["preset"] = implied
    elif options["preset"] is None:
        del options["preset"]
    return options


def _make_env(spec: str, options: dict[str, Any], seed: int | None = None) -> Any:
    from saliency_rl.envs import make_env

    return make_env(spec, seed=seed, **options)


def _observation_geometry(env: Any) -> tuple[int, int, int]:
    """(frames k, channels per frame C, image side) of an env's observations."""
    from saliency_rl.envs.wrappers import frame_channels

    channels = frame_channels(env)
    total, height, width = env.observation_space["rgb"].shape
    if height != width:
        raise RunError(f"SAC expects square frames, the environment renders {height}x{width}")
    return total // channels, channels, height


def _load_predictor(path: str | Path | None, device: torch.device, env_spec: str | None) -> Any:
    if path is None:
        return None
    from saliency_rl.saliency.predictor import SaliencyPredictor

    return SaliencyPredictor.load(path, device=device, env_spec=env_spec)


def _load_frozen(config: SACConfig, checkpoint: str | Path | None, device: torch.device) -> Any:
    if config.encoder != "multimae":
        if checkpoint is not None:
            raise RunError("--encoder-checkpoint is only used by --encoder multimae")
        return None
    if checkpoint is None:
        raise RunError(
            "--encoder multimae needs the pretrained MultiMAE: pass --encoder-checkpoint CKPT "
            "(a checkpoint or run directory of `saliency-rl pretrain`)"
        )
    from saliency_rl.models.frozen_encoder import FrozenMultiMAEEncoder

    # The constructor checks that the mode matches what the model was pretrained on.
    return FrozenMultiMAEEncoder.load(checkpoint, mode=config.saliency_mode, device=device)


def build_agent(
    config: SACConfig,
    inputs: StepInputs,
    action_dim: int,
    device: torch.device,
    precision: str = "fp32",
) -> SACAgent:
    """The agent of a config (networks initialised from torch's global RNG); ``precision``
    is the chosen one (fp32 / bf16; ``choose_sac_precision`` resolves auto)."""
    if config.encoder == "cnn":
        encoder: torch.nn.Module = PixelObsEncoder(
            PixelCNN(
                config.saliency_mode,
                frames=inputs.k,
                image_size=inputs.size,
                frame_channels=inputs.channels,
                num_layers=config.conv_layers,
                num_filters=config.conv_filters,
            )
        )
    else:
        encoder = VectorObsEncoder(inputs.fields["features"][0][0])
    c = config
    return SACAgent(
        encoder,
        action_dim,
        device=device,
        feature_dim=c.feature_dim,
        hidden_dim=c.hidden_dim,
        hidden_layers=c.hidden_layers,
        discount=c.discount,
        actor_lr=c.actor_lr,
        actor_betas=tuple(c.actor_betas),
        critic_lr=c.critic_lr,
        critic_betas=tuple(c.critic_betas),
        alpha_lr=c.alpha_lr,
        alpha_betas=tuple(c.alpha_betas),
        init_temperature=c.init_temperature,
        critic_tau=c.critic_tau,
        encoder_tau=c.encoder_tau,
        target_update_every=c.target_update_every,
        actor_update_every=c.actor_update_every,
        log_std_bounds=(c.log_std_min, c.log_std_max),
        augment_pad=c.augment_pad(inputs.size),
        target_augs=c.target_augs,
        q_augs=c.q_augs,
        target_encoder=c.target_encoder,
        curl=c.aux == "curl",
        curl_coef=c.curl_coef,
        precision=precision,
        generator=torch.Generator(device).manual_seed(c.seed + 1),
    )


def choose_sac_precision(
    config: SACConfig, agent: SACAgent, inputs: StepInputs, device: torch.device
) -> PrecisionChoice:
    """The precision of a new run: ``config.precision``, with ``auto`` timed on the agent's
    own encoder and critic (``SACAgent.precision_trial``) at up to PRECISION_TRIAL_BATCH."""
    batch = min(config.batch_size, PRECISION_TRIAL_BATCH)
    trial = agent.precision_trial(inputs.fields, batch) if config.precision == "auto" else None
    name = (
        f"{config.encoder} {config.saliency_mode} encoder + critic forward and backward, "
        f"batch {batch} x {config.q_augs} (+ {config.target_augs} without gradients), "
        f"{inputs.size}x{inputs.size}, torch threads {torch.get_num_threads()}"
    )
    return choose_precision(config.precision, device, trial, trial_name=name)


# ---------------------------------------------------------------------- policy
class SACPolicy:
    """A SAC agent's deterministic (or sampled) policy on env observations.

    ``act(obs)`` maps one observation dict to one action in the env's bounds; it computes
    the maps / features of every stacked frame itself, so it needs no episode history
    (``reset`` has nothing to clear). ``saliency(obs)``: the newest frame's map in [0, 1]
    that the policy used, or None where it uses none.
    """

    def __init__(
        self, agent: SACAgent, inputs: StepInputs, low: np.ndarray, high: np.ndarray
    ) -> None:
        self.agent, self.inputs = agent, inputs
        self.low, self.high = low.astype(np.float32), high.astype(np.float32)
        self.generator = torch.Generator(agent.device).manual_seed(0)

    def reset(self) -> None:
        """Nothing to clear: every call computes its inputs from the observation alone."""

    def act(self, obs: dict, deterministic: bool = True) -> np.ndarray:
        stored = self.inputs.first(obs)
        batch = {k: torch.from_numpy(np.asarray(v))[None] for k, v in stored.items()}
        action = self.agent.act(batch, deterministic, self.generator)[0].cpu().numpy()
        return scale_action(action, self.low, self.high)

    def saliency(self, obs: dict) -> np.ndarray | None:
        if not self.inputs.needs_maps:
            return None
        self.inputs.first(obs)
        return self.inputs.newest_map()


def scale_action(action: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """[-1, 1] -> [low, high] per dimension."""
    return (low + (action + 1.0) * 0.5 * (high - low)).astype(np.float32)


def load_policy(run_dir: str | Path, device: str | torch.device = "cpu") -> SACPolicy:
    """The policy of a SAC run's latest checkpoint (its predictor / MultiMAE reloaded from
    the paths in config.json)."""
    run_dir = Path(run_dir)
    saved = read_run(run_dir, ("sac",))
    checkpoint = run_dir / CHECKPOINTS_DIR / LATEST
    if not is_checkpoint(checkpoint):
        raise RunError(f"{run_dir} has no checkpoint yet ({checkpoint} is missing)")
    torch_device = resolve_device(device)
    config = SACConfig.from_json(saved["config"])
    env = _make_env(saved["env"], saved["env_options"])
    try:
        inputs = _inputs(config, env, saved.get("predictor"), saved.get("encoder_checkpoint"),
                         torch_device)  # fmt: skip
        agent = build_agent(config, inputs, env.action_space.shape[0], torch_device)
        _, weights = load_checkpoint(checkpoint, torch_device)
        agent.load_state_dict(weights)
        return SACPolicy(agent, inputs, env.action_space.low, env.action_space.high)
    finally:
        env.close()


def _inputs(
    config: SACConfig,
    env: Any,
    predictor: str | None,
    encoder_checkpoint: str | None,
    device: torch.device,
    env_spec: str | None = None,
) -> StepInputs:
    """The inputs of ``config``'s mode; ``env_spec``: warn if the predictor was trained on
    another environment."""
    frames, channels, size = _observation_geometry(env)
    return StepInputs(
        config.encoder,
        config.saliency_mode,
        frames=frames,
        frame_channels=channels,
        image_size=size,
        predictor=_load_predictor(predictor, device, env_spec),
        frozen=_load_frozen(config, encoder_checkpoint, device),
        device=device,
    )


# ---------------------------------------------------------------------- public API
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
        _import_wandb()
    env = _make_env(env_spec, options)  # fails early on a bad spec or option
    try:
        if len(env.action_space.shape) != 1:
            raise RunError(f"SAC needs a continuous action vector; {env_spec} has another kind")
        inputs = _inputs(config, env, predictor, encoder_checkpoint, torch_device, env_spec)
    except BaseException:
        env.close()
        raise
    if out is None:
        out = Path(runs_root) / (name or run_name(env_spec, config.method, config.seed))
    header = {
        "algo": "sac",
        "env": env_spec,
        "env_options": options,
        "seed": config.seed,
        "method": config.method,
        "preset": preset,
        "config": config.to_json(),
        "predictor": str(Path(predictor).resolve()) if predictor else None,
        "encoder_checkpoint": (
            str(Path(encoder_checkpoint).resolve()) if encoder_checkpoint else None
        ),
        "wandb": wandb,
        "device": str(torch_device),
        "created": now(),
        "command": " ".join(sys.argv),
        "versions": package_versions("numpy", "gymnasium", "dm-control", "metaworld", "mujoco"),
    }
    try:
        with new_run(out) as run_dir:  # removed again if the trainer cannot be built
            write_json(run_dir / CONFIG_FILE, header)
            trainer = _Trainer(run_dir, torch_device, progress, env=env, inputs=inputs)
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
    run_dir = Path(run_dir)
    saved = read_run(run_dir, ("sac",), resuming=True)
    checkpoint = run_dir / CHECKPOINTS_DIR / LATEST
    resumed_config(run_dir, saved, SACConfig.from_json(saved["config"]), changes, RESUMABLE_CHANGES)
    if not is_checkpoint(checkpoint):  # killed before its first checkpoint
        restart_without_checkpoint(run_dir)
    trainer = _Trainer(run_dir, resolve_device(device), progress)
    if is_checkpoint(checkpoint):
        trainer.restore(checkpoint)
    return trainer.run()


def _import_wandb() -> Any:
    try:
        import wandb
    except ImportError:
        raise RunError(
            "--wandb needs the wandb package, which is not installed: pip install wandb "
            "(or leave --wandb out: TensorBoard events are always written)"
        ) from None
    return wandb


# ---------------------------------------------------------------------- the loop
class _Trainer:
    """Steps, updates, logs, evaluations and checkpoints of one run (from its config.json)."""

    def __init__(
        self,
        run_dir: Path,
        device: torch.device,
        progress: bool,
        env: Any = None,
        inputs: StepInputs | None = None,
    ) -> None:
        """``env`` and ``inputs``: already built from this run's config (train_sac checked
        the settings with them), else built here."""
        self.run_dir, self.device, self.progress = run_dir, device, progress
        self.saved = read_run(run_dir, ("sac",))
        self.spec, self.options = self.saved["env"], self.saved["env_options"]
        self.config = c = SACConfig.from_json(self.saved["config"]).validate()
        torch.manual_seed(c.seed)  # network initialisation
        random.seed(c.seed)
        self.env = env if env is not None else _make_env(self.spec, self.options)
        self.low, self.high = self.env.action_space.low, self.env.action_space.high
        self.inputs = inputs or _inputs(
            c, self.env, self.saved.get("predictor"), self.saved.get("encoder_checkpoint"),
            device, self.spec,
        )  # fmt: skip
        self.eval_env: Any = None  # made at the first evaluation, kept for the next ones
        self.action_dim = self.env.action_space.shape[0]
        self.agent = build_agent(c, self.inputs, self.action_dim, device)
        self.precision = self._precision()
        self.agent.precision = self.precision.chosen
        self.replay = _replay(c, self.inputs, self.action_dim)
        self.explore = torch.Generator(device).manual_seed(c.seed + 2)  # actions while training
        self.metrics = MetricsLog(run_dir / METRICS_FILE, METRIC_COLUMNS)
        self.step = self.episodes = 0
        self.episode_return = 0.0
        self.returns: list[float] = []  # finished episodes since the last log row
        self.pending: dict[str, list[Any]] = {}  # update metrics since the last log row
        self.evaluations: list[dict[str, Any]] = []
        self.in_episode = False  # False between episodes: the next step resets
        self.stored: dict[str, np.ndarray] = {}  # the current observation, as stored
        self.purge_step: int | None = None
        self.action_repeat = self._action_repeat()

    def _precision(self) -> PrecisionChoice:
        """A resumed run keeps the precision config.json records (never measured again, so
        it resumes bit for bit); a new one decides it here and records it there."""
        if self.saved.get("precision"):
            return PrecisionChoice.from_json(self.saved["precision"])
        choice = choose_sac_precision(self.config, self.agent, self.inputs, self.device)
        self.saved["precision"] = choice.to_json()
        write_json(self.run_dir / CONFIG_FILE, self.saved)
        return choice

    def _action_repeat(self) -> int:
        """Simulator steps per agent step (every suite's env has ``action_repeat``)."""
        return int(getattr(self.env.unwrapped, "action_repeat", 1))

    # -------------------------------------------------------------- checkpoints
    def checkpoint(self) -> None:
        state = {
            "step": self.step,
            "episodes": self.episodes,
            "episode_return": self.episode_return,
            "in_episode": self.in_episode,
            "stored": {
                k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in self.stored.items()
            },
            "inputs": self.inputs.state(),
            "optimizers": self.agent.optimizer_state(),
            "explore": self.explore.get_state(),
            "torch_rng": torch.get_rng_state(),
            "python_rng": python_rng_state(),
            "replay": self.replay.state(),
            "returns": self.returns,
            "pending": {k: [float(x) for x in v] for k, v in self.pending.items()},
            "evaluations": self.evaluations,
        }
        config = {
            "model": "SACAgent",
            "env": self.spec,
            "step": self.step,
            "sac": self.config.to_json(),
        }
        save_checkpoint(
            self.run_dir / CHECKPOINTS_DIR / LATEST, config, self.agent.state_dict(), state
        )

    def restore(self, checkpoint: Path) -> None:
        _, weights = load_checkpoint(checkpoint, self.device)
        state = load_training_state(checkpoint)
        if state is None:
            raise CheckpointError(f"{checkpoint} has no training state to resume from")
        self.agent.load_state_dict(weights)
        self.agent.load_optimizer_state(state["optimizers"])
        self.explore.set_state(state["explore"])
        torch.set_rng_state(state["torch_rng"])
        set_python_rng_state(state["python_rng"])
        self.replay.load_state(state["replay"])
        self.step, self.episodes = int(state["step"]), int(state["episodes"])
        self.returns = [float(r) for r in state["returns"]]
        self.pending = {k: [float(x) for x in v] for k, v in state["pending"].items()}
        self.evaluations = list(state["evaluations"])
        # A run that stopped mid-episode (its total reached) continues with a new episode:
        # the simulator's state is not saved. Checkpoints between episodes resume exactly.
        self.in_episode = False
        if state["in_episode"]:
            self.episodes += 1
        self.metrics.truncate(self.step)  # rows logged after the checkpoint come again
        self.purge_step = self.step + 1

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

    def run(self) -> Path:
        c = self.config
        writer = self._writer()
        wandb_run = self._wandb()
        bar = tqdm(
            total=c.total_steps,
            initial=min(self.step, c.total_steps),
            unit="step",
            disable=not self.progress,
            desc=f"sac {self.spec} {c.method}",
            dynamic_ncols=True,
            mininterval=1.0,
        )
        self.log_time, self.log_step = time.perf_counter(), self.step
        checkpoint_due = False
        try:
            with bar:
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
                    before = self.step
                    self.step += 1
                    bar.update(1)
                    updating = self.step > c.init_steps or (c.init_steps == 0)
                    if updating and self.step % c.update_every == 0:
                        for _ in range(c.updates_per_step):
                            metrics = self.agent.update(
                                sample_nstep(
                                    self.replay, c.batch_size, c.nstep, c.discount, self.device
                                )
                            )
                            for key, value in metrics.items():
                                self.pending.setdefault(key, []).append(value)
                    if terminated or truncated:
                        self.returns.append(self.episode_return)
                        self.episodes += 1
                        self.in_episode = False
                    finished = self.step >= c.total_steps
                    if crossed(before, self.step, c.log_every) or finished:
                        self.log(writer, wandb_run)
                        if self.returns or self.evaluations:
                            bar.set_postfix(episodes=self.episodes, refresh=False)
                    if (c.eval_every and crossed(before, self.step, c.eval_every)) or finished:
                        self.evaluate(writer, wandb_run)
                    checkpoint_due |= crossed(before, self.step, c.checkpoint_every)
                    if finished or (checkpoint_due and not self.in_episode):
                        self.checkpoint()
                        checkpoint_due = False
        finally:
            self.env.close()
            if self.eval_env is not None:
                self.eval_env.close()
            writer.close()
            if wandb_run is not None:
                wandb_run.finish()
        self.write_eval()
        return self.run_dir

    # -------------------------------------------------------------- logs and evaluations
    def _writer(self) -> Any:
        from torch.utils.tensorboard import SummaryWriter

        # purge_step drops events a killed run wrote after its checkpoint.
        return SummaryWriter(str(self.run_dir / TENSORBOARD_DIR), purge_step=self.purge_step)

    def _wandb(self) -> Any:
        if not self.saved.get("wandb"):
            return None
        wandb = _import_wandb()
        return wandb.init(
            project="saliency-rl",
            name=self.run_dir.name,
            id=self.run_dir.name.replace(":", "-"),
            resume="allow",
            dir=str(self.run_dir),
            config=self.saved,
        )

    def _emit(self, row: dict[str, Any], writer: Any, wandb_run: Any) -> None:
        self.metrics.log(row)
        scalars = {k: v for k, v in row.items() if isinstance(v, float) and k != "fps"}
        for key, value in scalars.items():
            writer.add_scalar(key, value, self.step)
        if wandb_run is not None:
            wandb_run.log(scalars, step=self.step)

    def log(self, writer: Any, wandb_run: Any) -> None:
        elapsed = time.perf_counter() - self.log_time
        fps = (self.step - self.log_step) / max(elapsed, 1e-9)
        self.log_time, self.log_step = time.perf_counter(), self.step
        row: dict[str, Any] = {
            "step": self.step,
            "frames": self.step * self.action_repeat,
            "episodes": self.episodes,
            "updates": self.agent.updates,
            "time": now(),
            "fps": fps,
        }
        if self.returns:
            row["episode_return"] = float(np.mean(self.returns))
        for key, values in self.pending.items():
            row[key] = float(np.mean([float(v) for v in values]))
        self._emit(row, writer, wandb_run)
        self.returns, self.pending = [], {}

    def evaluate(self, writer: Any, wandb_run: Any) -> None:
        c = self.config
        if c.eval_episodes == 0 or any(e["step"] == self.step for e in self.evaluations):
            return
        if self.eval_env is None:
            self.eval_env = _make_env(self.spec, self.options)
        policy = SACPolicy(self.agent, self._eval_inputs(), self.low, self.high)
        # Every episode is reset with its own seed: the env's history does not matter.
        results, _ = run_episodes(
            self.eval_env, policy.act, c.eval_episodes, seed=EVAL_SEED + 1000 * c.seed
        )
        summary = summarize(results)
        result = {"step": self.step, "frames": self.step * self.action_repeat}
        result.update({k: v for k, v in summary.items() if k != "per_episode"})
        result["returns"] = [r["episode_return"] for r in summary["per_episode"]]
        self.evaluations.append(result)
        row = {
            "step": self.step,
            "frames": result["frames"],
            "episodes": self.episodes,
            "updates": self.agent.updates,
            "time": now(),
            "eval_return_mean": result["return_mean"],
            "eval_return_std": result["return_std"],
            "eval_length_mean": result["length_mean"],
        }
        if "success_rate" in result:
            row["eval_success_rate"] = result["success_rate"]
        self._emit(row, writer, wandb_run)

    def _eval_inputs(self) -> StepInputs:
        """Inputs of the same models, with their own frame history (none: the policy is
        stateless), so evaluation leaves the training stacks untouched."""
        i = self.inputs
        return StepInputs(
            i.encoder, i.mode, frames=i.k, frame_channels=i.channels, image_size=i.size,
            predictor=i.predictor, frozen=i.frozen, device=i.device,
        )  # fmt: skip

    def write_eval(self) -> None:
        final = None
        if self.evaluations:
            last = self.evaluations[-1]
            keys = ("step", "frames", "return_mean", "return_std", "success_rate", "episodes")
            final = {k: last[k] for k in keys if k in last}
        write_json(
            self.run_dir / EVAL_FILE,
            {
                "env": self.spec,
                "method": self.config.method,
                "seed": self.config.seed,
                "step": self.step,
                "frames": self.step * self.action_repeat,
                "final": final,
                "history": self.evaluations,
            },
        )


def _replay(config: SACConfig, inputs: StepInputs, action_dim: int) -> Any:
    from saliency_rl.data.replay import ReplayBuffer

    # A run writes at most 2 * total_steps + 1 observations (steps, and a first one per
    # episode), so a short run does not allocate a 1M-frame buffer. The bound never changes
    # which observations are evicted, so a resume with a larger total_steps stays exact.
    capacity = max(2, min(config.replay_size, 2 * config.total_steps + 2))
    return ReplayBuffer(capacity, inputs.fields, action_dim, seed=config.seed + 3)


__all__ = ["train_sac", "resume_sac", "load_policy", "SACPolicy", "SaliencyRLError"]
