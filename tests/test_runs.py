"""Run directories shared by every trainer: names, config.json, metrics.csv, resumes."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest

from saliency_rl.runs import (
    CONFIG_FILE,
    MetricsLog,
    RunError,
    create_run,
    crossed,
    python_rng_state,
    read_run,
    resumed_config,
    run_name,
    set_python_rng_state,
    write_json,
)


@dataclasses.dataclass(frozen=True)
class _Config:
    steps: int = 10
    lr: float = 1e-3

    def validate(self) -> _Config:
        if self.steps <= 0:
            raise RunError("steps must be > 0")
        return self

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def test_run_name_is_safe_and_stamped():
    assert run_name("dmc:cartpole-swingup", "sac cnn/rgb", 3, at=1700000000.7) == (
        "dmc-cartpole-swingup__sac-cnn-rgb__3__1700000000"
    )


def test_create_run_refuses_an_existing_run(tmp_path):
    run = create_run(tmp_path / "r")
    assert (run / "checkpoints").is_dir()
    write_json(run / CONFIG_FILE, {"algo": "sac"})
    with pytest.raises(RunError, match="already holds a run; pass --resume"):
        create_run(run)


def test_read_run_checks_the_algo(tmp_path):
    write_json(tmp_path / CONFIG_FILE, {"algo": "bc"})
    assert read_run(tmp_path, ("bc",))["algo"] == "bc"
    with pytest.raises(RunError, match=r"is not a SAC run \(algo 'bc'\)"):
        read_run(tmp_path, ("sac",))
    with pytest.raises(RunError, match="is not an A2C or ACKTR run") as refused:
        read_run(tmp_path, ("a2c", "acktr"))
    assert "resume it with" not in str(refused.value)
    with pytest.raises(RunError, match=r"resume it with `saliency-rl train bc --resume`"):
        read_run(tmp_path, ("sac",), resuming=True)
    with pytest.raises(RunError, match="does not exist"):
        read_run(tmp_path / "missing", ("bc",))
    (tmp_path / CONFIG_FILE).write_text("{not json")
    with pytest.raises(RunError, match="is damaged"):
        read_run(tmp_path, ("bc",))


def test_resumed_config_changes_only_the_resumable_fields(tmp_path):
    saved = {"algo": "x", "config": _Config().to_json()}
    write_json(tmp_path / CONFIG_FILE, saved)
    old = _Config()

    # unchanged (or None) values change nothing on disk
    assert resumed_config(tmp_path, saved, old, {"steps": 10, "lr": None}, ("steps",)) == old
    assert "resumes" not in json.loads((tmp_path / CONFIG_FILE).read_text())

    with pytest.raises(RunError, match=r"lr cannot change \(only steps can\)"):
        resumed_config(tmp_path, saved, old, {"lr": 0.1}, ("steps",))
    with pytest.raises(RunError, match=r"unknown _Config settings \['stepz'\]"):
        resumed_config(tmp_path, saved, old, {"stepz": 20}, ("steps",))
    with pytest.raises(RunError, match="steps must be > 0"):
        resumed_config(tmp_path, saved, old, {"steps": 0}, ("steps",))
    assert "resumes" not in json.loads((tmp_path / CONFIG_FILE).read_text())  # refused: kept

    new = resumed_config(tmp_path, saved, old, {"steps": 20, "lr": 1e-3}, ("steps",))
    assert new == _Config(steps=20)
    on_disk = json.loads((tmp_path / CONFIG_FILE).read_text())
    assert on_disk["config"]["steps"] == 20
    assert on_disk["resumes"][0]["changes"] == {"steps": 20}


def test_crossed():
    assert crossed(9, 10, 5) and crossed(4, 11, 5)
    assert not crossed(10, 14, 5) and not crossed(3, 100, 0)


def test_python_rng_state_round_trips_through_json():
    random.seed(7)
    state = json.loads(json.dumps(python_rng_state()))
    expected = [random.random() for _ in range(3)]
    set_python_rng_state(state)
    assert [random.random() for _ in range(3)] == expected


def test_metrics_log_truncates_and_refuses_other_columns(tmp_path):
    log = MetricsLog(tmp_path / "metrics.csv", ["step", "loss"])
    for step in (1, 2, 3):
        log.log({"step": step, "loss": 1 / step})
    log.truncate(2)
    assert [r["step"] for r in log.rows()] == ["1", "2"]
    assert log.rows()[1]["loss"] == "0.5"
    with pytest.raises(KeyError, match="not columns"):
        log.log({"steps": 4})
    with pytest.raises(RunError, match="another kind of run"):
        MetricsLog(tmp_path / "metrics.csv", ["step", "return"])


# ---------------------------------------------------------------------- Run
def test_run_create_writes_header_and_removes_itself_on_failure(tmp_path):
    from saliency_rl.runs import Run, run_header

    header = run_header("sac", "fake:square", {}, 0, "sac-cnn-rgb", "visarl", {"a": 1}, "cpu")
    assert header["config"] == {"a": 1} and "torch" in header["versions"]
    with pytest.raises(RuntimeError), Run.create(tmp_path / "run", header) as run:
        assert (run.path / "config.json").is_file()
        raise RuntimeError("the trainer could not be built")
    assert not (tmp_path / "run").exists()
    with Run.create(tmp_path / "run", header) as run:
        run.record(precision={"chosen": "fp32"})
    assert Run.open(tmp_path / "run", ("sac",)).saved["precision"] == {"chosen": "fp32"}


def test_run_checkpoint_round_trip_and_resume(tmp_path):
    import dataclasses

    import torch

    from saliency_rl.runs import Run, run_header

    @dataclasses.dataclass
    class Config:
        steps: int = 10
        lr: float = 0.1

        def validate(self):
            return self

        def to_json(self):
            return dataclasses.asdict(self)

        @classmethod
        def from_json(cls, data):
            return cls(**data)

    header = run_header("bc", "fake:square", {}, 0, "bc", "p", Config().to_json(), "cpu")
    with Run.create(tmp_path / "run", header) as run:
        pass
    resumed, config = Run.resume(run.path, ("bc",), Config, {"steps": 20}, ("steps",))
    assert config.steps == 20 and not resumed.has_checkpoint()
    with pytest.raises(RunError, match="lr cannot change"):
        Run.resume(run.path, ("bc",), Config, {"lr": 0.5}, ("steps",))
    resumed.save_checkpoint({"model": "x"}, {"w": torch.ones(2)}, {"step": 3})
    weights, state = resumed.load_checkpoint()
    assert state["step"] == 3 and torch.equal(weights["w"], torch.ones(2))


def test_check_settings_names_the_first_setting_out_of_range():
    import dataclasses

    from saliency_rl.runs import check_settings

    @dataclasses.dataclass
    class Settings:
        steps: int = 10
        lr: float = 1e-3
        seed: int = 0
        decay: float = 0.5
        mode: str = "a"

    rules = dict(positive=("steps", "lr"), non_negative=("seed",), fractions=("decay",))
    check_settings(Settings(), choices={"mode": ("a", "b")}, **rules)
    for change, message in (
        ({"steps": 0}, "steps must be > 0, got 0"),
        ({"lr": -1.0}, "lr must be > 0, got -1.0"),
        ({"seed": -1}, "seed must be >= 0, got -1"),
        ({"decay": 1.0}, r"decay must be in \[0, 1\), got 1.0"),
        ({"steps": "10"}, "steps must be > 0, got '10'"),  # not a number
        ({"steps": True}, "steps must be > 0, got True"),
        ({"mode": "c"}, "unknown mode 'c'; valid: a, b"),
    ):
        with pytest.raises(RunError, match=message):
            check_settings(Settings(**change), choices={"mode": ("a", "b")}, **rules)
