"""``saliency-rl sweep``: grids expand and validate; 2 tasks x 2 methods x 2 seeds of real
tiny SAC runs go through the local pool (killed half-way, then resumed without redoing
finished runs) and through a local Ray instance; ``report`` reads the sweep directory."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from saliency_rl.cli import build_parser, main
from saliency_rl.experiments.sweep import (
    RunSpec,
    _commands,
    expand_grid,
    load_grid,
    shipped_grids,
)

TINY = load_grid("tiny").runs  # the tests' grid ships with the package


def tiny_grid(tmp_path, **changes):
    data = yaml.safe_load((shipped_grids()[0].parent / "tiny.yaml").read_text())
    data.update(changes)
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_every_shipped_grid_expands_into_valid_commands(tmp_path):
    names = {p.stem for p in shipped_grids()}
    assert {"tiny", "visarl_table1", "visarl_table2", "visarl_table3", "visarl_table4"} <= names
    assert {"visarl_table5", "attention_single_task", "attention_universal"} <= names
    assert "attention_transfer" in names
    parser = build_parser()
    for path in shipped_grids():
        header = path.read_text().splitlines()[0]
        assert header.startswith("# Runs on:"), path  # says CPU or GPU, and how long
        grid = load_grid(path, tmp_path / path.stem, parser=parser)  # every command parsed
        assert grid.runs and grid.hardware
    assert len(TINY) == 8 and {r.method for r in TINY} == {"sac", "rad"}
    assert all("--no-progress" in r.argv and "--seed" in r.argv for r in TINY)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"metods": {}}, "unknown keys ['metods']"),
        ({"seeds": [0, -1]}, "seeds must be non-negative integers"),
        ({"options": {"total-steps": "{steps}"}}, "unknown placeholder {steps}"),
        ({"options": {"totl-steps": 5}}, "is not a valid command: "),
        ({"resources": {"gpus": 1}}, "unknown keys ['gpus']"),
        ({"evaluate": ["clean", "video"]}, "evaluate: unknown distractor 'video'"),
    ],
)
def test_a_bad_grid_is_one_line(tmp_path, capsys, change, message):
    assert main(["sweep", str(tiny_grid(tmp_path, **change)), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def test_an_unfinished_run_is_resumed_and_one_never_checkpointed_restarts(tmp_path):
    grid = expand_grid(yaml.safe_load(tiny_grid(tmp_path).read_text()), tmp_path / "s")
    run: RunSpec = grid.runs[0]
    (run.run_dir / "checkpoints" / "latest").mkdir(parents=True)
    (run.run_dir / "config.json").write_text("{}")
    assert _commands(run) == ([["{python}", "-m", "saliency_rl.cli", *run.argv]], "ok")
    assert not (run.run_dir / "config.json").exists()  # a fresh start: nothing to resume
    (run.run_dir / "checkpoints" / "latest").mkdir(parents=True)
    (run.run_dir / "config.json").write_text("{}")
    (run.run_dir / "checkpoints" / "latest" / "model.safetensors").write_bytes(b"x")
    commands, status = _commands(run)
    assert status == "resumed" and commands[0][-1] == "--resume"


def finished(sweep):
    return sorted(p.parent.name for p in (sweep / "runs").glob("*/eval.json"))


@pytest.mark.slow
def test_local_pool_killed_half_way_resumes_without_redoing_finished_runs(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    argv = [sys.executable, "-m", "saliency_rl.cli", "sweep", "tiny", "--out", str(sweep)]
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    process = subprocess.Popen(
        [*argv, "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
        start_new_session=True,  # its runs share its process group: killed together
    )  # fmt: skip
    deadline = time.time() + 900
    try:
        while len(finished(sweep)) < 2:
            assert process.poll() is None, process.stdout.read().decode()
            assert time.time() < deadline
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    done = finished(sweep)
    assert 2 <= len(done) < 8
    stamps = {name: (sweep / "runs" / name / "eval.json").stat().st_mtime_ns for name in done}

    assert main(["sweep", "tiny", "--out", str(sweep), "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert len(finished(sweep)) == 8
    for name, stamp in stamps.items():  # finished runs were skipped, not run again
        assert (sweep / "runs" / name / "eval.json").stat().st_mtime_ns == stamp
        assert f"{name}  done" in out
    summary = json.loads((sweep / "sweep.json").read_text())
    assert {r["status"] for r in summary["runs"]} <= {"done", "ok", "resumed"}
    assert "8 ok" not in out and f"{len(done)} done" in out

    # The report reads the sweep directory as it is: 2 tasks x 2 methods, 2 seeds each.
    assert main(["report", str(sweep), "--out", str(tmp_path / "report")]) == 0
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "| task | rad | sac |" in markdown
    assert "| dmc:cartpole-swingup |" in markdown and "| dmc:reacher-easy |" in markdown
    assert "8 runs (8 finished)" in markdown
    assert (tmp_path / "report" / "images" / "curve_dmc-reacher-easy.png").stat().st_size > 1000


@pytest.mark.slow
def test_a_failed_run_is_reported_and_the_others_go_on(tmp_path, capsys):
    grid = tiny_grid(
        tmp_path,
        tasks=["dmc:cartpole-swingup"],
        seeds=[0],
        methods={"sac": {"aux": "none"}, "broken": {"aux": "none", "predictor": "/no/such/dir"}},
    )
    assert main(["sweep", str(grid), "--out", str(tmp_path / "s"), "--workers", "2"]) == 2
    captured = capsys.readouterr()
    assert "dmc-cartpole-swingup__broken__0: FAILED" in captured.out
    assert "last lines of" in captured.out and "error" in captured.out.lower()
    assert "1 of 2 runs failed" in captured.err
    assert (tmp_path / "s" / "runs" / "dmc-cartpole-swingup__sac__0" / "eval.json").is_file()


@pytest.mark.slow
def test_ray_local_instance_runs_the_grid(tmp_path, capsys):
    ray = pytest.importorskip("ray", reason="ray is not installed: pip install -e '.[cluster]'")
    from saliency_rl.experiments.sweep import run_sweep

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        grid = load_grid("tiny", tmp_path / "sweep")
        outcomes = run_sweep(grid, ray="local")
    finally:
        ray.shutdown()
    assert [o.status for o in outcomes] == ["ok"] * 8
    assert len(finished(tmp_path / "sweep")) == 8
    log = (tmp_path / "sweep" / "runs" / grid.runs[0].name / "sweep.log").read_text()
    assert "==> " in log and "saliency-rl train sac" in log
    assert main(["report", str(tmp_path / "sweep"), "--out", str(tmp_path / "report")]) == 0


@pytest.mark.slow
def test_keypoint_grid_runs_and_reports_precision_recall(tmp_path, capsys):
    """The keypoints_table1 layout at a tiny budget: one game, attention vs Transporter."""
    pytest.importorskip("ale_py")
    data = yaml.safe_load((shipped_grids()[0].parent / "keypoints_table1.yaml").read_text())
    quiet = "--batch-size 4 --device cpu --no-progress"
    data.update(
        tasks=["atari:Berzerk"],
        seeds=[0],
        options={"k": 3, "frames": 6, "overlays": 2, "device": "cpu"},
        setup=[
            "collect --env {task} --frames 40 --out {setup}/frames --no-progress",
            f"pretrain-attention {{setup}}/frames --steps 2 --out {{setup}}/attention {quiet}",
            "pretrain-transporter {setup}/frames --keypoints 3 --steps 2 "
            f"--out {{setup}}/transporter {quiet}",
        ],
    )
    grid = tmp_path / "keypoints.yaml"
    grid.write_text(yaml.safe_dump(data))
    sweep = tmp_path / "sweep"
    assert main(["sweep", str(grid), "--out", str(sweep), "--workers", "2"]) == 0
    assert "2 ok" in capsys.readouterr().out
    assert main(["report", str(sweep), "--out", str(tmp_path / "report")]) == 0
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "Keypoints: precision / recall" in markdown
    assert "| game | attention | transporter |" in markdown
    assert "| atari:Berzerk |" in markdown
    assert "__00000.png" in markdown  # overlays shown under Keypoints
