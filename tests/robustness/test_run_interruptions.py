"""Runs refused or killed before their first checkpoint (issue 21, case 2), and the messages
of case 9 that name a run's kind.

A refused run leaves nothing behind, so the same command runs again; a run killed before its
first checkpoint continues with ``--resume`` from step 0 with its saved config.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from robustness_helpers import run_cli

from saliency_rl.runs import CONFIG_FILE, RunError, new_run

SAC_TINY = ["--total-steps", "6", "--init-steps", "3", "--batch-size", "4", "--hidden-dim", "16"]
SAC_TINY += ["--feature-dim", "8", "--hidden-layers", "1", "--episode-length", "3"]
SAC_TINY += ["--frame-stack", "2", "--action-repeat", "2", "--eval-every", "0"]
SAC_TINY += ["--eval-episodes", "1", "--log-every", "3", "--checkpoint-every", "3"]
SAC_TINY += ["--no-progress", "--device", "cpu", "--threads", "1", "--env-preset", "none"]
A2C_TINY = ["--num-envs", "2", "--log-every", "10", "--eval-episodes", "1"]
A2C_TINY += ["--eval-max-steps", "5", "--no-progress", "--device", "cpu"]


def _flag(argv: list[str], name: str, value: str) -> list[str]:
    argv = list(argv)
    argv[argv.index(name) + 1] = value
    return argv


def kill_after_first_rows(argv: list[str], run: Path, timeout: float = 120.0) -> None:
    """Start ``saliency-rl argv`` in a process and SIGKILL it once the run has logged a
    metrics row, before any checkpoint (the run's checkpoint interval is out of reach)."""
    command = [str(Path(sys.executable).parent / "saliency-rl"), *argv]
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            metrics = run / "metrics.csv"
            if metrics.is_file() and len(metrics.read_text().splitlines()) > 1:
                break
            if process.poll() is not None:
                pytest.fail(f"the run ended by itself: {process.stderr.read().decode()}")
            time.sleep(0.1)
        else:
            pytest.fail("the run logged no row in time")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert (run / CONFIG_FILE).is_file()
    assert not any((run / "checkpoints").iterdir())  # killed before its first checkpoint


@pytest.mark.slow
def test_a_sac_run_killed_before_its_first_checkpoint_resumes_from_step_0(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "sac", "--env", "dmc:cartpole-swingup", *SAC_TINY, "--out", str(run)]
    long = _flag(_flag(_flag(argv, "--total-steps", "100000"), "--checkpoint-every", "100000"),
                 "--log-every", "1")  # fmt: skip
    kill_after_first_rows(long, run)
    saved = json.loads((run / CONFIG_FILE).read_text())

    code, printed = run_cli(argv, capsys)  # a plain rerun still refuses the folder
    assert code == 2 and "pass --resume" in printed

    code, printed = run_cli([*argv, "--resume"], capsys)
    assert code == 0, printed
    assert "stopped before its first checkpoint: starting it again from step 0" in printed
    after = json.loads((run / CONFIG_FILE).read_text())
    assert after["config"]["seed"] == saved["config"]["seed"]
    assert after["created"] == saved["created"]  # the same run, not a new one
    steps = [int(r.split(",")[0]) for r in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == sorted(steps) and steps[-1] == 6  # no rows of the killed run left
    assert (run / "eval.json").is_file()


@pytest.mark.slow
def test_an_a2c_run_killed_before_its_first_checkpoint_resumes_from_step_0(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "a2c", "--env", "atari:Pong", "--attention", "none", *A2C_TINY]
    argv += ["--out", str(run)]
    kill_after_first_rows([*argv, "--total-steps", "10000000", "--checkpoint-every",
                           "10000000"], run)  # fmt: skip
    code, printed = run_cli([*argv, "--total-steps", "20"], capsys)
    assert code == 2 and "pass --resume" in printed
    code, printed = run_cli([*argv, "--total-steps", "20", "--resume"], capsys)
    assert code == 0, printed
    assert "starting it again from step 0" in printed
    assert (run / "eval.json").is_file()

    # case 9: the message that said "is a atari run"
    code, printed = run_cli(["evaluate", run, "--distractor", "color_hard"], capsys)
    assert code == 2 and f"{run} is an atari run; the distractors" in printed, printed


def test_a_refused_sac_setting_leaves_no_run_directory(tiny_multimae_64, tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "sac", "--env", "dmc:cartpole-swingup", "--encoder", "multimae"]
    argv += ["--encoder-checkpoint", tiny_multimae_64["rgb"], "--image-size", "84"]
    code, printed = run_cli([*argv, *SAC_TINY, "--out", run], capsys)
    assert code == 2
    assert printed.strip().splitlines() == [
        "saliency-rl: error: the MultiMAE encoder was pretrained on 64x64 frames, the "
        "environment renders 84x84: use --image-size 64"
    ]
    assert not run.exists()  # nothing written: the corrected command runs as a new run
    code, printed = run_cli([*argv[:-2], *SAC_TINY, "--out", run], capsys)
    assert code == 0, printed


def test_new_run_removes_what_a_failed_setup_created(tmp_path):
    fresh = tmp_path / "fresh"
    with pytest.raises(RunError), new_run(fresh) as run_dir:
        (run_dir / CONFIG_FILE).write_text("{}")
        raise RunError("a setting found bad while building the networks")
    assert not fresh.exists()

    mine = tmp_path / "mine"  # a folder the user made, holding their own file
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(KeyboardInterrupt), new_run(mine) as run_dir:
        (run_dir / CONFIG_FILE).write_text("{}")
        raise KeyboardInterrupt
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    assert (mine / "notes.txt").read_text() == "keep me"


def test_multimae_output_folder_messages_are_whole_sentences(fake_dataset, tmp_path, capsys):
    out = tmp_path / "pt"
    out.mkdir()
    (out / "something.txt").write_text("x")
    argv = ["pretrain", fake_dataset.root, "--modalities", "rgb", "--out", out, "--steps", "1"]
    code, printed = run_cli([*argv, "--no-progress", "--device", "cpu"], capsys)
    assert code == 2
    line = printed.strip().splitlines()[-1]
    assert line.endswith(
        "exists and is not empty: choose another --out (a new pretraining needs a new or "
        "empty folder)"
    ), line


@pytest.mark.slow
def test_button_press_topdown_zero_returns_are_the_reward_not_evaluation():
    """Case 10: deterministic evaluations of weak policies on this task returned exactly 0.0.
    Meta-World's v2 reward there is 5 * hamacher(1 - gripper_openness, near_button) until the
    hand is within 3 cm of the button, so a policy that holds the gripper open (action[3] = -1,
    what a saturated deterministic actor often does) earns exactly 0 at every step. The same
    evaluation loop reads a positive return and success from the scripted expert."""
    import numpy as np

    from saliency_rl.envs import make_env
    from saliency_rl.evaluation import run_episodes

    env = make_env("metaworld:button-press-topdown", seed=0, episode_length=150)
    try:
        expert, _ = run_episodes(env, lambda obs: env.unwrapped.expert_action(), 1, seed=10_000)
        assert expert[0].success and expert[0].episode_return > 50
        open_hand = np.array([1.0, -1.0, 1.0, -1.0], np.float32)
        held_open, _ = run_episodes(env, lambda obs: open_hand, 1, seed=10_000)
        assert held_open[0].episode_return == 0.0 and not held_open[0].success
    finally:
        env.close()
