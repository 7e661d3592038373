"""``saliency-rl train a2c`` and ``pretrain-attention`` end to end on tiny budgets: every
attention mode on two games, exact resume, and one clear line on bad input."""

from __future__ import annotations

import csv
import json

import pytest
from safetensors.torch import load_file

from saliency_rl.cli import main

TINY = [
    "--num-envs", "2", "--total-steps", "20", "--log-every", "10",
    "--eval-episodes", "1", "--eval-max-steps", "5", "--no-progress",
]  # fmt: skip
# Which pretrained module each fixed mode uses on each game (see conftest.py).
CHECKPOINT = {
    ("frozen", "MsPacman"): "MsPacman",
    ("frozen", "Pong"): "Pong",
    ("universal", "MsPacman"): "both",
    ("universal", "Pong"): "both",
    ("transfer", "MsPacman"): "Pong",
    ("transfer", "Pong"): "MsPacman",
}


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("game", ["MsPacman", "Pong"])
@pytest.mark.parametrize("mode", ["none", "joint", "top-down", "frozen", "universal", "transfer"])
def test_every_attention_mode_trains_from_the_cli(
    mode, game, attention_checkpoints, tmp_path, capsys
):
    run = tmp_path / "run"
    args = ["train", "a2c", "--env", f"atari:{game}", "--attention", mode, "--out", str(run)]
    if (mode, game) in CHECKPOINT:
        args += ["--attention-checkpoint", str(attention_checkpoints[CHECKPOINT[mode, game]])]
    if mode == "joint":  # the official scheme's first attention step comes after 16 updates
        args += ["--attention-warmup", "0"]
    assert main(args + TINY) == 0
    assert str(run) in capsys.readouterr().out

    config = json.loads((run / "config.json").read_text())
    assert config["env"] == f"atari:{game}" and config["config"]["attention"] == mode
    assert config["config"]["num_envs"] == 2 and config["preset"] == "wu2021"
    attention = config["attention"]
    if (mode, game) in CHECKPOINT:  # provenance: what the fixed module was pretrained on
        trained_on = {"MsPacman": ["MsPacman"], "Pong": ["Pong"], "both": ["MsPacman", "Pong"]}
        assert attention["pretrained_on"] == trained_on[CHECKPOINT[mode, game]]
        assert attention["pretraining"]["datasets"][0]["env_spec"].startswith("atari:")
    else:
        assert attention == {"mode": mode, "checkpoint": None}

    rows = read_csv(run / "metrics.csv")
    train_rows = [r for r in rows if r["policy_loss"]]
    assert [r["step"] for r in train_rows] == ["10", "20"]
    assert all(float(r["fps"]) > 0 for r in train_rows)
    assert bool(train_rows[-1]["attention_loss"]) == (mode == "joint")
    assert bool(train_rows[-1]["policy_mask_mean"]) == (mode != "none")
    for column in ("policy_mask_entropy", "policy_mask_on", "policy_mask_collapsed"):
        assert bool(train_rows[-1][column]) == (mode != "none")
    assert (run / "figures" / "attention_masks.png").is_file() == (mode != "none")
    if mode != "none":  # a picture at each checkpoint (the last step's, here)
        assert [p.name for p in (run / "masks").glob("*.png")] == ["step_000000020.png"]
    assert [r["step"] for r in rows if r["eval_score_mean"]] == ["20"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tb"))
    events.Reload()  # the same rows as TensorBoard scalars
    assert [e.step for e in events.Scalars("policy_loss")] == [10, 20]
    assert [e.step for e in events.Scalars("eval_score_mean")] == [20]

    result = json.loads((run / "eval.json").read_text())
    assert result["final"]["episodes"] == 1 and result["final"]["policy"] == "sampled"
    assert result["final"]["env_preset"] == "atari-eval" and result["step"] == 20
    latest = run / "checkpoints" / "latest"
    assert (latest / "model.safetensors").is_file()
    assert (latest / "training_state" / "state.json").is_file()


@pytest.mark.parametrize("update", ["separate", "joint"])
def test_resume_continues_exactly(tmp_path, update):
    base = ["train", "a2c", "--env", "atari:MsPacman", "--attention", "joint"]
    base += ["--attention-update", update, "--attention-warmup", "1"]  # steps 2-4 of 4
    base += ["--vector", "our", "--seed", "3", "--eval-episodes", "0", "--no-progress"]
    base += ["--num-envs", "2", "--log-every", "10", "--checkpoint-every", "20"]
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert main(base + ["--out", str(whole), "--total-steps", "40"]) == 0
    assert main(base + ["--out", str(split), "--total-steps", "20"]) == 0
    resume = ["train", "a2c", "--resume", "--out", str(split), "--total-steps", "40"]
    assert main(resume + ["--no-progress"]) == 0

    weights = [
        load_file(d / "checkpoints" / "latest" / "model.safetensors") for d in (whole, split)
    ]
    assert weights[0].keys() == weights[1].keys()
    for name in weights[0]:
        assert (weights[0][name] == weights[1][name]).all(), name
    losses = [
        [(r["step"], r["policy_loss"], r["attention_loss"]) for r in read_csv(d / "metrics.csv")]
        for d in (whole, split)
    ]
    assert losses[0] == losses[1] and len(losses[0]) == 4
    config = json.loads((split / "config.json").read_text())
    assert config["config"]["total_steps"] == 40 and config["resumes"][0]["changes"]


@pytest.mark.parametrize("precision", ["auto", "bf16"])
def test_precision_is_chosen_once_recorded_and_kept_on_resume(precision, tmp_path):
    run = tmp_path / "run"
    base = ["train", "a2c", "--env", "atari:Pong", "--attention", "joint", "--out", str(run)]
    base += ["--attention-warmup", "0", "--checkpoint-every", "10"]
    assert main([*base, "--precision", precision, *TINY]) == 0
    recorded = json.loads((run / "config.json").read_text())["precision"]
    assert recorded["requested"] == precision and recorded["chosen"] in ("fp32", "bf16")
    if precision == "auto":  # both timed on the run's own networks, the faster kept
        timings = recorded["timings_ms"]
        assert recorded["chosen"] == min(timings, key=timings.get)
        assert "joint attention" in recorded["trial"] and "16 frame pairs" in recorded["trial"]
    else:
        assert recorded["chosen"] == "bf16" and recorded["timings_ms"] is None
    rows = [r for r in read_csv(run / "metrics.csv") if r["attention_loss"]]
    assert rows and all(float(r["attention_loss"]) > 0 for r in rows)  # fp32 losses, finite
    resume = ["train", "a2c", "--resume", "--out", str(run), "--total-steps", "40"]
    assert main([*resume, "--no-progress"]) == 0
    assert json.loads((run / "config.json").read_text())["precision"] == recorded


def test_acktr_trains_in_fp32_only(tmp_path, capsys):
    argv = ["train", "acktr", "--env", "atari:Pong", "--out", str(tmp_path / "r"), *TINY]
    with pytest.raises(SystemExit) as exit_:  # not an acktr option
        main([*argv, "--precision", "bf16"])
    assert (
        exit_.value.code == 2 and "unrecognized arguments: --precision" in capsys.readouterr().err
    )
    from saliency_rl.algos.a2c import a2c_config
    from saliency_rl.runs import RunError

    with pytest.raises(RunError, match="acktr trains in fp32"):
        a2c_config("acktr", precision="auto").validate()


def run_cli(args, capsys):
    code = main(args)
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "atari:Pong", "--attention", "bottom-up"], "invalid choice: 'bottom-up'"),
        (["--env", "atari:Pong", "--attention", "frozen"], "needs a pretrained module"),
        (["--env", "dmc:cartpole-swingup"], "is not an Atari game"),
        (["--env", "atari:NoSuchGame"], "unknown atari task"),
        (["--env", "atari:Pong", "--attention-checkpoint", "x"], "only used by"),
        (["--env", "atari:Pong", "--attention", "universal", "--attention-checkpoint", "/nope"],
         "does not exist"),
        (["--resume"], "--resume needs the run"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(args, message, capsys, tmp_path):
    try:
        out = [] if "--resume" in args else ["--out", str(tmp_path / "r")]
        code, err = run_cli(["train", "a2c", *args, *out], capsys)
    except SystemExit as exit_:  # argparse's own errors
        code, err = exit_.code, capsys.readouterr().err.strip()
    assert code == 2
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "r" / "config.json").exists()


def test_mislabelled_pretrained_modes_are_refused(attention_checkpoints, capsys, tmp_path):
    pacman, both = attention_checkpoints["MsPacman"], attention_checkpoints["both"]
    cases = [
        ("frozen", "Pong", pacman, "use --attention transfer"),
        ("transfer", "MsPacman", pacman, "use frozen"),
        ("universal", "MsPacman", pacman, "use frozen"),
        ("transfer", "Pong", both, "use universal"),
    ]
    for mode, game, checkpoint, message in cases:
        args = ["train", "a2c", "--env", f"atari:{game}", "--attention", mode]
        args += ["--attention-checkpoint", str(checkpoint), "--out", str(tmp_path / mode)]
        code, err = run_cli(args, capsys)
        assert code == 2 and message in err and len(err.splitlines()) == 1, err


def test_transporter_refuses_non_atari_data_and_attention_a_bad_grid(
    fake_dataset, capsys, tmp_path
):
    data = str(fake_dataset.root)
    code, err = run_cli(["pretrain-transporter", data, "--out", str(tmp_path / "t")], capsys)
    assert code == 2 and "Atari frames" in err and len(err.splitlines()) == 1
    argv = ["pretrain-attention", data, "--grid", "12", "--out", str(tmp_path / "a")]
    code, err = run_cli(argv, capsys)
    assert code == 2 and "power of two" in err and len(err.splitlines()) == 1


def test_a_fixed_module_run_resumes_with_its_saved_module(attention_checkpoints, tmp_path):
    run = tmp_path / "run"
    args = ["train", "a2c", "--env", "atari:Pong", "--attention", "transfer", "--out", str(run)]
    args += ["--attention-checkpoint", str(attention_checkpoints["MsPacman"])]
    assert main(args + TINY) == 0
    before = load_file(run / "checkpoints" / "latest" / "model.safetensors")
    resume = ["train", "a2c", "--resume", "--out", str(run), "--total-steps", "30"]
    assert main(resume + ["--eval-episodes", "0", "--no-progress"]) == 0
    after = load_file(run / "checkpoints" / "latest" / "model.safetensors")
    attention = [name for name in before if name.startswith("attention.")]
    assert attention and all((before[n] == after[n]).all() for n in attention)  # still fixed
    assert any(not (before[n] == after[n]).all() for n in before if n.startswith("cnn."))
    assert json.loads((run / "eval.json").read_text())["step"] == 30
