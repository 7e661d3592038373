"""Train behaviour cloning on demonstrations: ``saliency-rl train bc --dataset D --encoder E``.

:func:`train_bc` starts a run, :func:`resume_bc` continues one, :func:`load_policy` loads
the trained policy for ``saliency-rl evaluate``. The run directory::

    runs/<env>__bc-multimae-<mode>__<seed>__<time>/
      config.json          env spec and options of the dataset, BCConfig, dataset, encoder
                           checkpoint and mode, saliency predictor, feature field, split
      metrics.csv          every log_every gradient steps: train and validation loss; a row
                           per closed-loop evaluation (eval_return_mean / std,
                           eval_success_rate)
      checkpoints/latest/  config.json + model.safetensors + training_state/ (optimizer,
                           sampling RNG, step, evaluations), replaced atomically
      eval.json            written last: the final evaluation (clean, and under each
                           distractor asked for) and the history

Features: the frozen encoder encodes every demonstration frame once
(``cache_dataset_features``, stored in the dataset), so training runs on vectors. In mode
``rgb+saliency`` the maps are the dataset's ``saliency`` field when it was labelled by the
policy's predictor, else the predictor's own predictions; at rollout time the same
predictor runs on every new frame, so the policy sees features made the same way.

``step`` in metrics.csv counts gradient steps (behaviour cloning takes no environment
steps). Exact resume: the window sampling (a NumPy generator) and the optimizer are
restored, and nothing else is random, so N steps in one go and N/2 + resume + N/2 give the
same weights on the CPU.

Evaluation: episode i is reset with seed ``EVAL_SEED + i`` (new object and goal positions,
disjoint from the demonstrations' seeds), the same episodes for every run and method.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from saliency_rl.algos.bc import (
    BCConfig,
    BCPolicy,
    BCPolicyNet,
    bc_loss,
    chunk_targets,
    num_val_episodes,
)
from saliency_rl.checkpoint import (
    is_checkpoint,
    load_checkpoint,
    load_training_state,
    save_checkpoint,
)
from saliency_rl.data.dataset import Dataset
from saliency_rl.devices import resolve_device
from saliency_rl.errors import CheckpointError, DatasetError
from saliency_rl.runs import (
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    EVAL_FILE,
    METRICS_FILE,
    MetricsLog,
    RunError,
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
EVAL_SEED = 100_000  # as saliency_rl.evaluation: far above any demonstration's seed
EVAL_SIDE_BY_SIDE = 10  # environments played at once in evaluate_bc (batched encoder calls)
RESUMABLE_CHANGES = ("steps", "log_every", "checkpoint_every", "eval_every", "eval_episodes")
METRIC_COLUMNS = (
    "step",
    "time",
    "loss",
    "val_loss",
    "grad_norm",
    "steps_per_second",
    "eval_return_mean",
    "eval_return_std",
    "eval_success_rate",
)


# ---------------------------------------------------------------------- data
class Demonstrations:
    """States, actions and chunk targets of a dataset's episodes, in memory.

    The last frame of an episode takes no action and is left out: an episode of T + 1
    frames gives T (state, action) pairs.
    """

    def __init__(self, dataset: Dataset, feature_field: str, use_proprio: bool, chunk: int) -> None:
        fields = [feature_field, "action"] + (["proprio"] if use_proprio else [])
        self.states: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []
        self.targets: list[np.ndarray] = []
        self.masks: list[np.ndarray] = []
        for episode in range(dataset.num_episodes):
            data = dataset.episode(episode, fields)
            parts = [data[feature_field]] + ([data["proprio"]] if use_proprio else [])
            states = np.concatenate(parts, axis=1).astype(np.float32)[:-1]  # (T, S)
            actions = data["action"].astype(np.float32)[:-1]  # (T, A)
            if len(actions) == 0:
                continue
            targets, mask = chunk_targets(actions, chunk)
            self.states.append(states)
            self.actions.append(actions)
            self.targets.append(targets)
            self.masks.append(mask)
        if not self.states:
            raise DatasetError(f"dataset {dataset.root} has no episode with an action")
        self.state_dim = self.states[0].shape[1]
        self.action_dim = self.actions[0].shape[1]

    def __len__(self) -> int:
        return len(self.states)

    def windows(
        self, starts: list[tuple[int, int]], length: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Windows of ``length`` steps from (episode, step) starts, zero-padded past the end.

        Returns states (B, W, S), targets (B, W, H, A) and mask (B, W, H); padded steps are
        masked out (the LSTM is causal, so they do not change the steps before them).
        """
        batch = len(starts)
        chunk = self.targets[0].shape[1]
        states = np.zeros((batch, length, self.state_dim), np.float32)
        targets = np.zeros((batch, length, chunk, self.action_dim), np.float32)
        mask = np.zeros((batch, length, chunk), bool)
        for i, (episode, start) in enumerate(starts):
            stop = min(start + length, len(self.states[episode]))
            n = stop - start
            states[i, :n] = self.states[episode][start:stop]
            targets[i, :n] = self.targets[episode][start:stop]
            mask[i, :n] = self.masks[episode][start:stop]
        return torch.from_numpy(states), torch.from_numpy(targets), torch.from_numpy(mask)


def split_episodes(count: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, validation) episode indices, a seeded split by episode."""
    order = np.random.default_rng(seed).permutation(count)
    held = num_val_episodes(count, fraction)
    return sorted(int(e) for e in order[held:]), sorted(int(e) for e in order[:held])


# ---------------------------------------------------------------------- encoders
def _dataset_label_predictor(dataset: Dataset) -> dict | None:
    entry = dataset.meta["extra_fields"].get("saliency", {})
    return entry.get("provenance") if dataset.has_field("saliency") else None


def resolve_saliency(
    dataset: Dataset, predictor: str | Path | None
) -> tuple[str | None, str | None]:
    """(predictor checkpoint, saliency source for the cache) for mode ``rgb+saliency``.

    The dataset's ``saliency`` field is used when it was labelled by the given predictor
    (or, with no predictor given, by the predictor its provenance names, which then also
    runs at rollout time); a given predictor that did not label the dataset computes the
    maps itself, so training and rollouts see the same maps.
    """
    from saliency_rl.saliency.label import predictor_hash

    labels = _dataset_label_predictor(dataset)
    if predictor is not None:
        predictor = str(Path(predictor).resolve())
        if not Path(predictor).is_dir():
            raise CheckpointError(f"saliency predictor {predictor} does not exist")
        same = labels is not None and labels.get("predictor_hash") == predictor_hash(predictor)
        return predictor, "dataset" if same else "predictor"
    if labels is not None and labels.get("predictor") and Path(labels["predictor"]).is_dir():
        return str(labels["predictor"]), "dataset"
    raise RunError(
        "mode rgb+saliency needs a saliency predictor to run at rollout time: pass "
        "--predictor CKPT (saliency-rl train-saliency), or label the dataset with one first "
        f"(saliency-rl label {dataset.root} --predictor CKPT)"
    )


def _load_encoder(checkpoint: str | Path, mode: str | None, predictor: str | None, device: Any):
    from saliency_rl.models.frozen_encoder import FrozenMultiMAEEncoder

    return FrozenMultiMAEEncoder.load(checkpoint, mode=mode, predictor=predictor, device=device)


def prepare_features(
    dataset: Dataset,
    encoder: str | Path,
    mode: str | None = None,
    predictor: str | Path | None = None,
    device: str | torch.device = "auto",
    progress: bool = True,
) -> tuple[Any, str, str | None, str | None]:
    """Load the frozen encoder (and predictor) and cache the dataset's features once.

    Returns:
        (encoder, feature field, predictor checkpoint or None, saliency source or None).
    """
    from saliency_rl.models.frozen_encoder import cache_dataset_features, default_feature_field

    frozen = _load_encoder(encoder, mode, None, device)
    source = None
    if frozen.needs_saliency:
        from saliency_rl.saliency.predictor import SaliencyPredictor

        predictor, source = resolve_saliency(dataset, predictor)
        frozen.predictor = SaliencyPredictor.load(
            predictor, device=frozen.device, env_spec=dataset.env_spec
        )
    else:
        predictor = None  # the other modes never look at saliency
    if tuple(dataset.image_size) != frozen.image_size:
        raise DatasetError(
            f"dataset {dataset.root} has {dataset.image_size[0]}x{dataset.image_size[1]} frames; "
            f"the encoder was pretrained on {frozen.image_size[0]}x{frozen.image_size[1]}"
        )
    # Maps the predictor computes itself are another source than the dataset's labels.
    field = (default_feature_field(frozen) + ("_pred" if source == "predictor" else ""))[:64]
    field = cache_dataset_features(
        dataset, frozen, name=field, saliency=source or "auto", progress=progress
    )
    return frozen, field, predictor, source


# ---------------------------------------------------------------------- evaluation
def evaluate_bc(
    policy: BCPolicy,
    env_spec: str,
    env_options: dict[str, Any],
    episodes: int,
    *,
    seed: int = EVAL_SEED,
    distractor: str | None = None,
    progress: bool = False,
    side_by_side: int = EVAL_SIDE_BY_SIDE,
) -> dict[str, Any]:
    """Closed-loop rollouts: episode i reset with ``seed + i``; ``summarize``'s dict.

    ``side_by_side`` environments play at once, each with its own fork of ``policy`` (its
    own LSTM history and action chunk) and one batched encoder call for all of them per
    step: the frozen MultiMAE and the saliency predictor cost about as much for 10 frames
    as for one on a CPU, and they are half of a step's time played one at a time.
    """
    from saliency_rl.envs import make_env
    from saliency_rl.evaluation import run_episodes_side_by_side, summarize

    options = {k: v for k, v in env_options.items() if k != "seed"}
    if distractor is not None:
        options["distractor"] = distractor
    count = max(1, min(side_by_side, episodes))
    envs, forks = [], [policy.fork() for _ in range(count)]
    try:
        for _ in range(count):
            envs.append(make_env(env_spec, seed=seed, **options))

        def act_many(slots: list[int], observations: list[dict]) -> list[np.ndarray]:
            states = policy.states(observations)
            return [
                forks[slot].act_on_state(state) for slot, state in zip(slots, states, strict=True)
            ]

        results, _ = run_episodes_side_by_side(
            envs,
            act_many,
            episodes,
            seed,
            reset=lambda slot: forks[slot].reset(),  # a new episode: empty LSTM history
            progress=progress,
        )
    finally:
        for env in envs:
            env.close()
    summary = summarize(results)
    summary["seed"] = seed
    summary["distractor"] = distractor or "clean"
    return summary


# ---------------------------------------------------------------------- entry points
def train_bc(
    dataset: str | Path | Dataset,
    encoder: str | Path,
    config: BCConfig | None = None,
    *,
    mode: str | None = None,
    predictor: str | Path | None = None,
    out: str | Path | None = None,
    name: str | None = None,
    runs_root: str | Path = "runs",
    device: str | torch.device = "auto",
    preset: str = "visarl-bc",
    eval_distractors: tuple[str, ...] = (),
    progress: bool = True,
) -> Path:
    """Behaviour-clone the demonstrations of ``dataset`` on frozen features; returns the run dir.

    Args:
        dataset: a dataset with continuous actions (``saliency-rl collect --policy expert``).
        encoder: a MultiMAE pretraining run or checkpoint (``saliency-rl pretrain``).
        config: hyperparameters (default: preset ``visarl-bc``).
        mode: encoder mode (``rgb``, ``rgb+saliency-pretrain-only``, ``rgb+saliency``);
            None: what the model was pretrained on.
        predictor: saliency predictor checkpoint for ``rgb+saliency`` (default: the one
            that labelled the dataset).
        out: run directory; default ``runs_root/name``.
        name: default ``<env>__bc-multimae-<mode>__<seed>__<time>``.
        device: ``auto``, ``cpu`` or ``cuda``.
        preset: the preset ``config`` came from, recorded in config.json.
        eval_distractors: distractor modes to evaluate the final policy under as well
            (``color_easy``, ``color_hard``, ``video_easy``, ``video_hard``).
        progress: progress bars on stderr.

    Raises:
        DatasetError: no actions, discrete actions, or a missing field. RunError: a bad
        setting, a missing predictor, or the run exists. ModelError / CheckpointError: the
        encoder or predictor cannot be loaded or does not fit the frames.
    """
    config = (config or BCConfig()).validate()
    dataset = dataset if isinstance(dataset, Dataset) else Dataset.open(dataset)
    action = dataset.fields.get("action")
    if action is None:
        raise DatasetError(
            f"dataset {dataset.root} has no actions: behaviour cloning needs demonstrations "
            "(saliency-rl collect --policy expert)"
        )
    if action.dtype != "float32" or len(action.shape) != 1:
        raise DatasetError(
            f"dataset {dataset.root} has {action.dtype} actions of shape {action.shape}; "
            "behaviour cloning here needs continuous (float32 vector) actions"
        )
    if config.use_proprio and "proprio" not in dataset.fields:
        config = dataclasses.replace(config, use_proprio=False)  # e.g. no proprio in the env
    if dataset.num_episodes == 0:
        raise DatasetError(f"dataset {dataset.root} has no episodes")
    _check_eval_seeds(dataset, config)
    torch_device = resolve_device(device)
    frozen, field, predictor, source = prepare_features(
        dataset, encoder, mode, predictor, torch_device, progress
    )
    mode = frozen.mode
    method = f"bc-multimae-{mode}"
    spec = dataset.env_spec
    if out is None:
        out = Path(runs_root) / (name or run_name(spec, method, config.seed))
    train, val = split_episodes(dataset.num_episodes, config.val_fraction, config.seed)
    header = {
        "algo": "bc",
        "env": spec,
        "env_options": dict(dataset.env_options),
        "seed": config.seed,
        "method": method,
        "preset": preset,
        "config": config.to_json(),
        "dataset": str(dataset.root.resolve()),
        "feature_field": field,
        "encoder_checkpoint": str(frozen.checkpoint),
        "encoder_mode": mode,
        "predictor": predictor,
        "saliency_source": source,
        "split": {"train": train, "val": val},
        "eval_distractors": list(eval_distractors),
        "device": str(torch_device),
        "created": now(),
        "command": " ".join(sys.argv),
        "versions": package_versions("gymnasium", "numpy", "mujoco", "metaworld"),
    }
    with new_run(out) as run_dir:  # removed again if the trainer cannot be built
        write_json(run_dir / CONFIG_FILE, header)
        trainer = _Trainer(run_dir, dataset, frozen, torch_device, progress)
    return trainer.run()


def resume_bc(
    run_dir: str | Path,
    *,
    device: str | torch.device = "auto",
    progress: bool = True,
    **changes: Any,
) -> Path:
    """Continue a run from its latest checkpoint (or its start); returns the run directory.

    ``changes`` are BCConfig fields; those in RESUMABLE_CHANGES may differ from the run's
    (e.g. ``steps`` to train longer), the others must equal them; None values are ignored.
    """
    run_dir = Path(run_dir)
    saved = read_run(run_dir, ("bc",), resuming=True)
    resumed_config(run_dir, saved, BCConfig.from_json(saved["config"]), changes, RESUMABLE_CHANGES)
    torch_device = resolve_device(device)
    dataset = Dataset.open(saved["dataset"])
    frozen = _load_encoder(
        saved["encoder_checkpoint"], saved["encoder_mode"], saved.get("predictor"), torch_device
    )
    checkpoint = run_dir / CHECKPOINTS_DIR / LATEST
    if not is_checkpoint(checkpoint):  # killed before its first checkpoint
        restart_without_checkpoint(run_dir)
    trainer = _Trainer(run_dir, dataset, frozen, torch_device, progress)
    if is_checkpoint(checkpoint):
        trainer.restore(checkpoint)
    return trainer.run()


def load_policy(run_dir: str | Path, device: str | torch.device = "cpu") -> BCPolicy:
    """The policy of a BC run's latest checkpoint, with its encoder and predictor reloaded."""
    run_dir = Path(run_dir)
    saved = read_run(run_dir, ("bc",))
    checkpoint = run_dir / CHECKPOINTS_DIR / LATEST
    if not is_checkpoint(checkpoint):
        raise RunError(f"{run_dir} has no checkpoint yet ({checkpoint} is missing)")
    torch_device = resolve_device(device)
    frozen = _load_encoder(
        saved["encoder_checkpoint"], saved["encoder_mode"], saved.get("predictor"), torch_device
    )
    ckpt_config, weights = load_checkpoint(checkpoint, torch_device)
    config = BCConfig.from_json(saved["config"])
    net = _build_net(config, ckpt_config["state_dim"], ckpt_config["action_dim"]).to(torch_device)
    net.load_state_dict(weights)
    return BCPolicy(
        net,
        frozen,
        config,
        np.asarray(ckpt_config["action_low"], np.float32),
        np.asarray(ckpt_config["action_high"], np.float32),
    )


def _build_net(config: BCConfig, state_dim: int, action_dim: int) -> BCPolicyNet:
    return BCPolicyNet(
        state_dim,
        action_dim,
        config.chunk,
        mlp_hidden=config.mlp_hidden,
        lstm_hidden=config.lstm_hidden,
        head_hidden=config.head_hidden,
    )


def _check_eval_seeds(dataset: Dataset, config: BCConfig) -> None:
    """Evaluation seeds must not repeat a demonstration's object and goal positions."""
    collections = dataset.meta["provenance"].get("collections", [])
    highest = max(
        (int(c["seed"]) + int(c["episodes"][1]) for c in collections if "seed" in c), default=0
    )
    if highest > EVAL_SEED:
        raise RunError(
            f"dataset {dataset.root} has demonstrations seeded up to {highest}, which overlap "
            f"the evaluation seeds from {EVAL_SEED}: collect with smaller seeds"
        )


def _action_bounds(spec: str, options: dict[str, Any]) -> tuple[list[float], list[float]]:
    from saliency_rl.envs import make_env

    env = make_env(spec, **{k: v for k, v in options.items() if k != "seed"})
    try:
        space = env.action_space
        return space.low.astype(float).tolist(), space.high.astype(float).tolist()
    finally:
        env.close()


# ---------------------------------------------------------------------- the loop
class _Trainer:
    """Window sampling, updates, logs, evaluations and checkpoints of one run."""

    def __init__(
        self, run_dir: Path, dataset: Dataset, frozen: Any, device: torch.device, progress: bool
    ) -> None:
        self.run_dir, self.device, self.progress = run_dir, device, progress
        self.saved = read_run(run_dir, ("bc",))
        self.config = c = BCConfig.from_json(self.saved["config"])
        self.frozen = frozen
        self.spec, self.options = self.saved["env"], self.saved["env_options"]
        self.data = Demonstrations(dataset, self.saved["feature_field"], c.use_proprio, c.chunk)
        split = self.saved["split"]
        self.train_eps, self.val_eps = split["train"], split["val"]
        torch.manual_seed(c.seed)  # network initialisation
        self.net = _build_net(c, self.data.state_dim, self.data.action_dim).to(device)
        self.net.set_normalizer(np.concatenate([self.data.states[e] for e in self.train_eps]))
        self.optimizer = torch.optim.AdamW(
            self.net.parameters(), lr=c.learning_rate, weight_decay=c.weight_decay
        )
        self.rng = np.random.default_rng(c.seed)
        # Every (episode, step) of the training episodes is a window start, equally likely.
        self.starts = [(e, t) for e in self.train_eps for t in range(len(self.data.states[e]))]
        self.val_starts = [
            (e, t) for e in self.val_eps for t in range(0, len(self.data.states[e]), c.history)
        ]
        self.step = 0
        self.evaluations: list[dict[str, Any]] = []
        self.pending: dict[str, list[float]] = {}
        self.metrics = MetricsLog(run_dir / METRICS_FILE, METRIC_COLUMNS)
        bounds = self.saved.get("action_bounds")
        if bounds is None:
            bounds = _action_bounds(self.spec, self.options)
            self.saved["action_bounds"] = bounds
            write_json(run_dir / CONFIG_FILE, self.saved)
        self.action_low, self.action_high = bounds

    # -------------------------------------------------------------- checkpoints
    def checkpoint(self) -> None:
        state = {
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "numpy_rng": self.rng.bit_generator.state,
            "evaluations": self.evaluations,
            "pending": self.pending,
        }
        config = {
            "model": "BCPolicyNet",
            "state_dim": self.data.state_dim,
            "action_dim": self.data.action_dim,
            "action_low": self.action_low,
            "action_high": self.action_high,
            "step": self.step,
            "bc": self.config.to_json(),
        }
        save_checkpoint(
            self.run_dir / CHECKPOINTS_DIR / LATEST, config, self.net.state_dict(), state
        )

    def restore(self, checkpoint: Path) -> None:
        _, weights = load_checkpoint(checkpoint, self.device)
        state = load_training_state(checkpoint, self.device)
        if state is None:
            raise CheckpointError(f"{checkpoint} has no training state to resume from")
        self.net.load_state_dict(weights)
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["numpy_rng"]
        self.step = int(state["step"])
        self.evaluations = list(state["evaluations"])
        self.pending = {k: [float(x) for x in v] for k, v in state["pending"].items()}
        self.metrics.truncate(self.step)  # rows logged after the checkpoint come again

    # -------------------------------------------------------------- updates
    def update(self) -> dict[str, float]:
        c = self.config
        picks = self.rng.integers(0, len(self.starts), c.batch_size)
        states, targets, mask = self.data.windows([self.starts[i] for i in picks], c.history)
        loss = bc_loss(
            self.net, states.to(self.device), targets.to(self.device), mask.to(self.device)
        )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(
            self.net.parameters(), c.grad_clip if c.grad_clip > 0 else float("inf")
        )
        self.optimizer.step()
        return {"loss": float(loss.detach()), "grad_norm": float(norm)}

    @torch.no_grad()
    def val_loss(self) -> float | None:
        if not self.val_starts:
            return None
        states, targets, mask = self.data.windows(self.val_starts, self.config.history)
        self.net.eval()
        try:
            return float(
                bc_loss(
                    self.net, states.to(self.device), targets.to(self.device), mask.to(self.device)
                )
            )
        finally:
            self.net.train()

    def run(self) -> Path:
        c = self.config
        bar = tqdm(
            total=c.steps,
            initial=self.step,
            unit="step",
            disable=not self.progress,
            desc=f"bc {self.spec} {self.saved['encoder_mode']}",
            dynamic_ncols=True,
            mininterval=1.0,
        )
        last_time, last_step = time.perf_counter(), self.step
        with bar:
            while self.step < c.steps:
                for key, value in self.update().items():
                    self.pending.setdefault(key, []).append(value)
                self.step += 1
                bar.update(1)
                finished = self.step == c.steps
                if (c.log_every and self.step % c.log_every == 0) or finished:
                    elapsed = time.perf_counter() - last_time
                    speed = (self.step - last_step) / max(elapsed, 1e-9)
                    last_time, last_step = time.perf_counter(), self.step
                    row = self.log(speed)
                    bar.set_postfix(loss=f"{row['loss']:.4f}", refresh=False)
                if (c.eval_every and self.step % c.eval_every == 0) and not finished:
                    self.evaluate()
                if (c.checkpoint_every and self.step % c.checkpoint_every == 0) or finished:
                    self.checkpoint()
        if c.eval_episodes and not any(e["step"] == self.step for e in self.evaluations):
            self.evaluate()
            self.checkpoint()  # the final evaluation survives a kill before eval.json
        self.write_eval()
        return self.run_dir

    # -------------------------------------------------------------- logs and evaluations
    def log(self, speed: float) -> dict[str, Any]:
        row: dict[str, Any] = {"step": self.step, "time": now(), "steps_per_second": speed}
        row.update({k: float(np.mean(v)) for k, v in self.pending.items()})
        row["val_loss"] = self.val_loss()
        self.metrics.log(row)
        self.pending = {}
        return row

    def policy(self) -> BCPolicy:
        self.net.eval()
        return BCPolicy(
            self.net,
            self.frozen,
            self.config,
            np.asarray(self.action_low, np.float32),
            np.asarray(self.action_high, np.float32),
        )

    def evaluate(self) -> None:
        c = self.config
        policy = self.policy()
        try:
            result = evaluate_bc(
                policy, self.spec, self.options, c.eval_episodes, progress=self.progress
            )
            result = {"step": self.step, **result}
            if self.step == c.steps:  # the final policy, also under the distractors asked for
                result["distractors"] = {
                    d: evaluate_bc(
                        policy,
                        self.spec,
                        self.options,
                        c.eval_episodes,
                        distractor=d,
                        progress=self.progress,
                    )
                    for d in self.saved.get("eval_distractors", [])
                }
        finally:
            self.net.train()
        self.evaluations = [e for e in self.evaluations if e["step"] != self.step] + [result]
        self.metrics.log(
            {
                "step": self.step,
                "time": now(),
                "eval_return_mean": result["return_mean"],
                "eval_return_std": result["return_std"],
                "eval_success_rate": result.get("success_rate"),
            }
        )

    def write_eval(self) -> None:
        final = self.evaluations[-1] if self.evaluations else None
        keys = ("return_mean", "return_std", "success_rate", "episodes", "length_mean")

        def brief(result: dict[str, Any]) -> dict[str, Any]:
            return {k: result[k] for k in keys if k in result}

        write_json(
            self.run_dir / EVAL_FILE,
            {
                "env": self.spec,
                "method": self.saved["method"],
                "step": self.step,
                "final": None if final is None else {**brief(final), "seed": final["seed"]},
                "distractors": {
                    d: brief(r) for d, r in ((final or {}).get("distractors") or {}).items()
                },
                "history": [{"step": e["step"], **brief(e)} for e in self.evaluations],
                "per_episode": None if final is None else final["per_episode"],
            },
        )
