"""``saliency-rl train acktr`` end to end on tiny budgets: two games, attention none and
joint; exact resume with the K-FAC statistics; one clear line on bad input."""

from __future__ import annotations

import csv
import json

import pytest
from safetensors.torch import load_file

from saliency_rl.algos.a2c_trainer import load_policy
from saliency_rl.cli import main

TINY = [
    "--num-envs", "2", "--num-steps", "5", "--total-steps", "30", "--log-every", "10",
    "--eval-episodes", "1", "--eval-max-steps", "5", "--no-progress",
]  # fmt: skip


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
@pytest.mark.parametrize("game", ["MsPacman", "Pong"])
@pytest.mark.parametrize("mode", ["none", "joint"])
def test_acktr_trains_from_the_cli(mode, game, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "acktr", "--env", f"atari:{game}", "--attention", mode, "--out", str(run)]
    assert main(args + TINY) == 0
    assert str(run) in capsys.readouterr().out

    config = json.loads((run / "config.json").read_text())
    assert config["algo"] == "acktr" and config["preset"] == "acktr"
    assert config["method"] == f"acktr-{mode}" and config["env"] == f"atari:{game}"
    assert config["env_options"] == {"preset": "atari-eval"} and config["seed"] == 0
    settings = config["config"]
    assert settings["learning_rate"] == 0.25 and settings["kfac_kl_clip"] == 0.001
    assert settings["num_envs"] == 2 and settings["attention"] == mode

    rows = read_csv(run / "metrics.csv")
    train_rows = [r for r in rows if r["policy_loss"]]
    assert [r["step"] for r in train_rows] == ["10", "20", "30"]
    assert all(r["kfac_skipped"] == "0" for r in train_rows)
    assert all(0 < float(r["kl_scale"]) <= 1 for r in train_rows)
    assert bool(train_rows[-1]["attention_loss"]) == (mode == "joint")
    eval_rows = [r for r in rows if r["eval_score_mean"]]
    assert [r["step"] for r in eval_rows] == ["30"]
    assert eval_rows[0]["eval_return_mean"] == eval_rows[0]["eval_score_mean"]

    result = json.loads((run / "eval.json").read_text())
    assert result["algo"] == "acktr" and result["step"] == 30
    assert result["final"]["episodes"] == 1
    assert result["final"] == result["history"][-1] and "mean" not in result["final"]  # one format
    latest = run / "checkpoints" / "latest"
    assert (latest / "model.safetensors").is_file()

    policy = load_policy(run)  # the shared Policy interface, on the evaluation env's frames
    from saliency_rl.envs import make_env

    env = make_env(f"atari:{game}", **config["env_options"], seed=0)
    obs, _ = env.reset(seed=0)
    policy.reset()
    action = policy.act(obs)
    assert action.shape == () and 0 <= int(action) < env.action_space.n
    saliency = policy.saliency(obs)
    if mode == "none":
        assert saliency is None
    else:
        assert saliency.shape == obs["rgb"].shape[-2:]
        assert 0 <= saliency.min() and saliency.max() <= 1
    env.close()


@pytest.mark.slow
def test_acktr_resume_continues_exactly(tmp_path):
    """Factor statistics, eigen-decompositions, momentum and the Fisher generator are in
    the training state: 40 steps in one go == 20 + resume + 20, bit for bit."""
    base = ["train", "acktr", "--env", "atari:MsPacman", "--attention", "joint"]
    base += ["--vector", "our", "--seed", "3", "--eval-episodes", "0", "--no-progress"]
    base += ["--num-envs", "2", "--num-steps", "5", "--log-every", "10"]
    base += ["--checkpoint-every", "20", "--kfac-eigen-every", "3"]
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert main(base + ["--out", str(whole), "--total-steps", "40"]) == 0
    assert main(base + ["--out", str(split), "--total-steps", "20"]) == 0
    resume = ["train", "acktr", "--resume", "--out", str(split), "--total-steps", "40"]
    assert main(resume + ["--no-progress"]) == 0

    weights = [
        load_file(d / "checkpoints" / "latest" / "model.safetensors") for d in (whole, split)
    ]
    for name in weights[0]:
        assert (weights[0][name] == weights[1][name]).all(), name
    columns = ("step", "policy_loss", "attention_loss", "kl_scale")
    losses = [
        [tuple(r[c] for c in columns) for r in read_csv(d / "metrics.csv")] for d in (whole, split)
    ]
    assert losses[0] == losses[1] and len(losses[0]) == 4


def test_acktr_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    cases = [
        (["--env", "atari:Pong", "--preset", "wu2021"], "is an A2C preset"),
        (["--env", "atari:Pong", "--kfac-stat-decay", "1.5"], "kfac_stat_decay must be in"),
        (["--env", "atari:Pong", "--kfac-kl-clip", "0"], "kfac_kl_clip must be > 0"),
    ]
    for args, message in cases:
        code = main(["train", "acktr", *args, "--out", str(tmp_path / "r")])
        err = capsys.readouterr().err.strip()
        assert code == 2 and message in err and len(err.splitlines()) == 1, err
        assert not (tmp_path / "r" / "config.json").exists()


def test_a2c_and_acktr_runs_resume_only_as_themselves(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "a2c", "--env", "atari:Pong", "--out", str(run), "--num-envs", "2"]
    args += ["--total-steps", "10", "--eval-episodes", "0", "--no-progress"]
    assert main(args) == 0
    capsys.readouterr()
    code = main(["train", "acktr", "--resume", "--out", str(run), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "is not an ACKTR run" in err and "train a2c --resume" in err
