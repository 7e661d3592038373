"""What a training loop writes as it goes, the same for every trainer and pretraining.

- :class:`RunLog`: metrics.csv (``runs.MetricsLog``), TensorBoard events under ``tb/`` and,
  when asked, Weights & Biases, all fed by one ``log(row)``; ``rewind(step)`` before a
  resume drops what a killed run logged after its checkpoint, from the CSV and from
  TensorBoard (``purge_step``).
- :class:`Averages`: the update metrics since the last log row, averaged into the row and
  kept in the checkpoint, so a resumed run logs the same rows as an unbroken one.
- :class:`Cadence`: when a log, an evaluation and a checkpoint are due as a step counter
  advances (a multiple of the interval passed, or the end reached), with the progress bar.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from saliency_rl.runs import METRICS_FILE, TENSORBOARD_DIR, MetricsLog, RunError, crossed


def import_wandb() -> Any:
    """The wandb package; RunError saying how to get it (or do without) if missing."""
    try:
        import wandb
    except ImportError:
        raise RunError(
            "--wandb needs the wandb package, which is not installed: pip install wandb "
            "(or leave --wandb out: TensorBoard events are always written)"
        ) from None
    return wandb


class RunLog:
    """metrics.csv + TensorBoard (+ W&B) of one run directory.

    ``columns`` are the CSV's; every finite float of a row is also a TensorBoard scalar at
    the row's ``step`` (ints are counters: step, frames, episodes, updates). ``wandb``: the run's
    config.json, to start (or resume) a W&B run named after the directory.
    """

    def __init__(
        self,
        run_dir: str | Path,
        columns: Sequence[str],
        *,
        wandb: Mapping[str, Any] | None = None,
        tensorboard: bool = True,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.csv = MetricsLog(self.run_dir / METRICS_FILE, columns)
        self.columns = self.csv.columns
        self._tensorboard = tensorboard
        self._wandb_config = wandb
        self._writer: Any = None
        self._wandb_run: Any = None
        self._purge_step: int | None = None
        if wandb is not None:
            import_wandb()  # fail before training, not at the first row

    def rewind(self, step: int) -> None:
        """Drop rows logged after ``step`` (a resume from the checkpoint at ``step``)."""
        self.csv.truncate(step)
        self._purge_step = step + 1

    def log(self, row: Mapping[str, Any]) -> None:
        """One row: appended to metrics.csv, its numbers to TensorBoard and W&B."""
        self.csv.log(row)
        step = int(row["step"])
        scalars = {k: float(v) for k, v in row.items() if isinstance(v, float) and math.isfinite(v)}
        if self._tensorboard and scalars:
            writer = self._tensorboard_writer()
            for key, value in scalars.items():
                writer.add_scalar(key, value, step)
        if self._wandb_config is not None and scalars:
            self._wandb().log(scalars, step=step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._wandb_run is not None:
            self._wandb_run.finish()
            self._wandb_run = None

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _tensorboard_writer(self) -> Any:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step drops events a killed run wrote after its checkpoint.
            self._writer = SummaryWriter(
                str(self.run_dir / TENSORBOARD_DIR), purge_step=self._purge_step
            )
        return self._writer

    def _wandb(self) -> Any:
        if self._wandb_run is None:
            self._wandb_run = import_wandb().init(
                project="saliency-rl",
                name=self.run_dir.name,
                id=self.run_dir.name.replace(":", "-"),
                resume="allow",
                dir=str(self.run_dir),
                config=dict(self._wandb_config or {}),
            )
        return self._wandb_run


class Averages:
    """Metric values since the last log row; ``means()`` averages them and starts again."""

    def __init__(self) -> None:
        self.values: dict[str, list[float]] = {}

    def add(self, metrics: Mapping[str, float]) -> None:
        for key, value in metrics.items():
            self.values.setdefault(key, []).append(float(value))

    def means(self, finite_only: bool = False) -> dict[str, float | None]:
        """The mean of each metric (``finite_only``: of its finite values, None if none),
        and a fresh start."""
        out: dict[str, float | None] = {}
        for key, values in self.values.items():
            if finite_only:
                values = [v for v in values if math.isfinite(v)]
            out[key] = sum(values) / len(values) if values else None
        self.values = {}
        return out

    def state(self) -> dict[str, list[float]]:
        """For a checkpoint's training state."""
        return {k: list(v) for k, v in self.values.items()}

    def load(self, state: Mapping[str, Sequence[float]]) -> None:
        self.values = {k: [float(x) for x in v] for k, v in state.items()}


@dataclass(frozen=True)
class Due:
    """What an advance of the step counter calls for."""

    log: bool
    evaluate: bool
    checkpoint: bool
    finished: bool


class Cadence:
    """The log / evaluation / checkpoint schedule of a loop and its progress bar.

    ``advance(before, after)`` moves the bar and says what is due: an interval's multiple
    in (before, after], or the end (``after >= total``), where all three are due. An
    interval of 0 never falls due before the end. ``speed()`` is steps per second since the
    last call (the first call: since the cadence was made).
    """

    def __init__(
        self,
        total: int,
        step: int,
        *,
        log_every: int,
        eval_every: int,
        checkpoint_every: int,
        desc: str,
        progress: bool,
        unit: str = "step",
        unit_scale: bool = False,
    ) -> None:
        self.total = total
        self.log_every, self.eval_every, self.checkpoint_every = (
            log_every,
            eval_every,
            checkpoint_every,
        )
        self.bar = tqdm(
            total=total,
            initial=min(step, total),
            unit=unit,
            unit_scale=unit_scale,
            disable=not progress,
            desc=desc,
            dynamic_ncols=True,
            mininterval=1.0,
        )
        self._time, self._step = time.perf_counter(), step

    def advance(self, before: int, after: int) -> Due:
        self.bar.update(after - before)
        finished = after >= self.total
        return Due(
            log=finished or crossed(before, after, self.log_every),
            evaluate=finished or crossed(before, after, self.eval_every),
            checkpoint=finished or crossed(before, after, self.checkpoint_every),
            finished=finished,
        )

    def speed(self, step: int) -> float:
        """Steps per second since the last call."""
        now_ = time.perf_counter()
        rate = (step - self._step) / max(now_ - self._time, 1e-9)
        self._time, self._step = now_, step
        return rate

    def show(self, **postfix: Any) -> None:
        """Values beside the bar (episodes, score, loss)."""
        self.bar.set_postfix(refresh=False, **postfix)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> Cadence:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
