"""run_log: the metrics log every trainer writes (CSV + TensorBoard), averages, cadence."""

from __future__ import annotations

import math

import pytest

from saliency_rl.run_log import Averages, Cadence, RunLog
from saliency_rl.runs import RunError


def tensorboard_scalars(run_dir) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


def test_log_writes_csv_and_tensorboard_floats_only(tmp_path):
    with RunLog(tmp_path, ("step", "time", "episodes", "loss", "skipped")) as log:
        log.log({"step": 1, "time": "t", "episodes": 3, "loss": 0.5})
        log.log({"step": 2, "loss": 0.25, "skipped": math.nan})
    rows = log.csv.rows()
    assert [r["loss"] for r in rows] == ["0.5", "0.25"]
    assert rows[0]["episodes"] == "3"
    scalars = tensorboard_scalars(tmp_path)
    assert scalars == {"loss": [(1, 0.5), (2, 0.25)]}  # ints and NaN are not curves


def test_rewind_drops_rows_and_events_after_the_checkpoint(tmp_path):
    with RunLog(tmp_path, ("step", "loss")) as log:
        for step in range(1, 5):
            log.log({"step": step, "loss": float(step)})
    with RunLog(tmp_path, ("step", "loss")) as log:  # a resume from the checkpoint at 2
        log.rewind(2)
        log.log({"step": 3, "loss": 30.0})
    assert [r["step"] for r in log.csv.rows()] == ["1", "2", "3"]
    assert tensorboard_scalars(tmp_path)["loss"] == [(1, 1.0), (2, 2.0), (3, 30.0)]


def test_wandb_missing_fails_before_training(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_wandb(name, *args, **kwargs):
        if name == "wandb":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_wandb)
    with pytest.raises(RunError, match="pip install wandb"):
        RunLog(tmp_path, ("step",), wandb={"algo": "sac"})


def test_averages_mean_state_and_finite_only():
    averages = Averages()
    averages.add({"loss": 1.0, "kl": math.inf})
    averages.add({"loss": 3.0, "kl": 2.0})
    copy = Averages()
    copy.load(averages.state())
    assert copy.means(finite_only=True) == {"loss": 2.0, "kl": 2.0}
    assert averages.means()["loss"] == 2.0
    assert averages.means() == {}  # started again


def test_cadence_due_at_multiples_and_at_the_end():
    with Cadence(
        10, 0, log_every=3, eval_every=0, checkpoint_every=4, desc="x", progress=False
    ) as c:
        due = [c.advance(s, s + 1) for s in range(10)]
    assert [i + 1 for i, d in enumerate(due) if d.log] == [3, 6, 9, 10]
    assert [i + 1 for i, d in enumerate(due) if d.evaluate] == [10]  # 0: only at the end
    assert [i + 1 for i, d in enumerate(due) if d.checkpoint] == [4, 8, 10]
    assert [d.finished for d in due].index(True) == 9
    # a counter that advances by more than one step (A2C: steps per update)
    with Cadence(
        100, 0, log_every=25, eval_every=50, checkpoint_every=0, desc="x", progress=False
    ) as c:
        due = [c.advance(s, s + 20) for s in range(0, 100, 20)]
    assert [d.log for d in due] == [False, True, True, True, True]
    assert [d.evaluate for d in due] == [False, False, True, False, True]
