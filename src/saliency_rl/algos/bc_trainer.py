"""Train behaviour cloning on demonstrations: ``saliency-rl train bc --dataset D --encoder E``.

:func:`train_bc` starts a run, :func:`resume_bc` continues one (``bc_policy.load_policy``
loads the trained policy for ``saliency-rl evaluate``; ``bc_data`` prepares the
demonstrations). The run directory::

    runs/<env>__bc-multimae-<mode>__<seed>__<time>/
      config.json          env spec and options of the dataset, BCConfig, dataset, encoder
                           checkpoint and mode, saliency predictor, feature field, split
      metrics.csv          every log_every gradient steps: train and validation loss; a row
                           per closed-loop evaluation (eval_return_mean / std,
                           eval_success_rate)
      tb/                  the same as TensorBoard events
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

Evaluation: episode i is reset with seed ``rollout.EVAL_SEED + i`` (new object and goal positions,
disjoint from the demonstrations' seeds), the same episodes for every run and method.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from saliency_rl.algos.bc import BCConfig, BCPolicy, bc_loss
from saliency_rl.algos.bc_data import Demonstrations, load_encoder, prepare_features, split_episodes
from saliency_rl.algos.bc_policy import build_net, evaluate_bc, load_policy
from saliency_rl.algos.rollout import EVAL_SEED
from saliency_rl.data.dataset import Dataset
from saliency_rl.devices import resolve_device
from saliency_rl.errors import DatasetError
from saliency_rl.precision import PrecisionChoice, autocast, decide_precision, on_a_copy
from saliency_rl.run_log import Averages, Cadence, RunLog
from saliency_rl.runs import Run, RunError, evaluation_entry, now, run_header, run_name

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
    header = run_header(
        "bc", spec, dataset.env_options, config.seed, method, preset, config.to_json(),
        torch_device,
        versions=("gymnasium", "numpy", "mujoco", "metaworld"),
        dataset=str(dataset.root.resolve()),
        feature_field=field,
        encoder_checkpoint=str(frozen.checkpoint),
        encoder_mode=mode,
        predictor=predictor,
        saliency_source=source,
        split={"train": train, "val": val},
        eval_distractors=list(eval_distractors),
    )  # fmt: skip
    with Run.create(out, header) as run:  # removed again if the trainer cannot be built
        trainer = _Trainer(run, dataset, frozen, torch_device, progress)
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
    run, _ = Run.resume(run_dir, ("bc",), BCConfig, changes, RESUMABLE_CHANGES)
    saved, torch_device = run.saved, resolve_device(device)
    dataset = Dataset.open(saved["dataset"])
    frozen = load_encoder(
        saved["encoder_checkpoint"], saved["encoder_mode"], saved.get("predictor"), torch_device
    )
    trainer = _Trainer(run, dataset, frozen, torch_device, progress)
    return trainer.run(restore=run.has_checkpoint())


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
        self, run: Run, dataset: Dataset, frozen: Any, device: torch.device, progress: bool
    ) -> None:
        self.lifecycle, self.run_dir, self.device, self.progress = run, run.path, device, progress
        self.saved = run.saved
        self.config = c = BCConfig.from_json(self.saved["config"])
        self.frozen = frozen
        self.spec, self.options = self.saved["env"], self.saved["env_options"]
        self.data = Demonstrations(dataset, self.saved["feature_field"], c.use_proprio, c.chunk)
        split = self.saved["split"]
        self.train_eps, self.val_eps = split["train"], split["val"]
        torch.manual_seed(c.seed)  # network initialisation
        self.net = build_net(c, self.data.state_dim, self.data.action_dim).to(device)
        self.net.set_normalizer(np.concatenate([self.data.states[e] for e in self.train_eps]))
        self.optimizer = torch.optim.AdamW(
            self.net.parameters(), lr=c.learning_rate, weight_decay=c.weight_decay
        )
        self.rng = np.random.default_rng(c.seed)
        # Every (episode, step) of the training episodes is a window start, equally likely.
        self.starts = [(e, t) for e in self.train_eps for t in range(len(self.data.states[e]))]
        self.precision = self._precision()
        self.val_starts = [
            (e, t) for e in self.val_eps for t in range(0, len(self.data.states[e]), c.history)
        ]
        self.step = 0
        self.evaluations: list[dict[str, Any]] = []
        self.averages = Averages()  # update metrics since the last log row
        self.log = RunLog(run.path, METRIC_COLUMNS)
        bounds = self.saved.get("action_bounds")
        if bounds is None:
            bounds = _action_bounds(self.spec, self.options)
            run.record(action_bounds=bounds)
        self.action_low, self.action_high = bounds

    def _precision(self) -> PrecisionChoice:
        """A resumed run keeps the precision config.json records; a new one decides it here
        (``auto``: timed on a copy of the network, on windows drawn by a generator of its
        own, so the run's weights and streams are untouched) and records it there."""
        c = self.config

        def make_trial() -> Callable[[], torch.Tensor]:
            picks = np.random.default_rng(0).integers(0, len(self.starts), c.batch_size)
            batch = self.data.windows([self.starts[i] for i in picks], c.history)
            states, targets, mask = (x.to(self.device) for x in batch)
            return on_a_copy(self.net, lambda twin: bc_loss(twin, states, targets, mask))

        name = (f"BC policy forward and backward, batch {c.batch_size} x {c.history} steps, "
                f"torch threads {torch.get_num_threads()}")  # fmt: skip
        choice = decide_precision(c.precision, self.device, make_trial,
                                  recorded=self.saved.get("precision"), trial_name=name)  # fmt: skip
        if not self.saved.get("precision"):
            self.lifecycle.record(precision=choice.to_json())
        return choice

    # -------------------------------------------------------------- checkpoints
    def checkpoint(self) -> None:
        state = {
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "numpy_rng": self.rng.bit_generator.state,
            "evaluations": self.evaluations,
            "pending": self.averages.state(),
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
        self.lifecycle.save_checkpoint(config, self.net.state_dict(), state)

    def restore(self) -> None:
        weights, state = self.lifecycle.load_checkpoint(self.device)
        self.net.load_state_dict(weights)
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["numpy_rng"]
        self.step = int(state["step"])
        self.evaluations = list(state["evaluations"])
        self.averages.load(state["pending"])
        self.log.rewind(self.step)  # rows logged after the checkpoint come again

    # -------------------------------------------------------------- updates
    def update(self) -> dict[str, float]:
        c = self.config
        picks = self.rng.integers(0, len(self.starts), c.batch_size)
        states, targets, mask = self.data.windows([self.starts[i] for i in picks], c.history)
        with autocast(self.precision.chosen, self.device):
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

    def run(self, restore: bool = False) -> Path:
        if restore:  # resuming from the last checkpoint
            self.restore()
        c = self.config
        cadence = Cadence(
            c.steps, self.step, log_every=c.log_every, eval_every=c.eval_every,
            checkpoint_every=c.checkpoint_every,
            desc=f"bc {self.spec} {self.saved['encoder_mode']}", progress=self.progress,
        )  # fmt: skip
        with cadence, self.log:
            while self.step < c.steps:
                self.averages.add(self.update())
                self.step += 1
                due = cadence.advance(self.step - 1, self.step)
                if due.log:
                    row = self._log_row(cadence.speed(self.step))
                    cadence.show(loss=f"{row['loss']:.4f}")
                if due.evaluate and not due.finished:
                    self.evaluate()
                if due.checkpoint:
                    self.checkpoint()
            if c.eval_episodes and not any(e["step"] == self.step for e in self.evaluations):
                self.evaluate()
                self.checkpoint()  # the final evaluation survives a kill before eval.json
        final = self.evaluations[-1] if self.evaluations else {}
        self.lifecycle.write_eval(
            self.step, self.evaluations, distractors=final.get("distractors", {})
        )
        return self.run_dir

    # -------------------------------------------------------------- logs and evaluations
    def _log_row(self, speed: float) -> dict[str, Any]:
        row: dict[str, Any] = {"step": self.step, "time": now(), "steps_per_second": speed}
        row.update(self.averages.means())
        row["val_loss"] = self.val_loss()
        self.log.log(row)
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

        def evaluation(distractor: str | None = None) -> dict[str, Any]:
            summary = evaluate_bc(
                policy, self.spec, self.options, c.eval_episodes, distractor=distractor,
                progress=self.progress,
            )  # fmt: skip
            return evaluation_entry(self.step, summary, seed=EVAL_SEED)

        try:
            entry = evaluation()
            if self.step == c.steps:  # the final policy, also under the distractors asked for
                entry["distractors"] = {
                    d: evaluation(d) for d in self.saved.get("eval_distractors", [])
                }
        finally:
            self.net.train()
        self.evaluations = [e for e in self.evaluations if e["step"] != self.step] + [entry]
        self.log.log(
            {
                "step": self.step,
                "time": now(),
                "eval_return_mean": entry["return_mean"],
                "eval_return_std": entry["return_std"],
                "eval_success_rate": entry.get("success_rate"),
            }
        )


__all__ = ["evaluate_bc", "load_policy", "prepare_features", "resume_bc", "train_bc"]
