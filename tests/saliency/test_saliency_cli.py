"""train-saliency and label through the command line: tiny end-to-end runs, one line on bad input."""

import subprocess
import sys

import numpy as np

from saliency_rl.cli import main
from saliency_rl.data.dataset import Dataset


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "saliency_rl.cli", *args], capture_output=True, text=True
    )


def one_error_line(result, *fragments):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one line, no traceback
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_train_saliency_then_label(fake_dataset, tmp_path, capsys):
    root = str(fake_dataset.root)
    assert main(["annotate", root, "--oracle", "--frames", "6"]) == 0
    out = str(tmp_path / "predictor")
    args = ["train-saliency", root, "--out", out, "--size", "tiny", "--steps", "4"]
    assert main([*args, "--batch-size", "2", "--device", "cpu", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "trained unet on 5 frames" in printed and "held-out 1 frames: max F-beta" in printed

    assert main(["label", root, "--predictor", out, "--batch-size", "16", "--no-progress"]) == 0
    assert "labelled 63 frames in 3 episodes" in capsys.readouterr().out
    assert main(["label", root, "--predictor", out, "--no-progress"]) == 0
    assert "labelled 0 frames" in capsys.readouterr().out  # resumed: nothing left
    saliency = Dataset.open(root).episode(1, ["saliency"])["saliency"]
    assert saliency.dtype == np.uint8 and saliency.shape == (21, 32, 32)

    default = ["train-saliency", root, "--model", "picanet", "--size", "tiny", "--steps", "2"]
    assert main([*default, "--no-progress"]) == 0
    assert (fake_dataset.root / "predictors" / "picanet" / "model.safetensors").is_file()


def test_help_lists_the_commands():
    result = run("--help")
    assert "train-saliency" in result.stdout and "label" in result.stdout


def test_bad_input_is_one_line(fake_dataset, tmp_path):
    root = str(fake_dataset.root)
    one_error_line(run("train-saliency", root, "--steps", "1"), "no annotated frames", "annotate")
    one_error_line(
        run("label", root, "--predictor", str(tmp_path / "nowhere")), "checkpoint", "does not exist"
    )
    one_error_line(run("train-saliency", root, "--holdout", "1.5"), "--holdout")
    one_error_line(run("train-saliency", root, "--background-augment", "2"), "--background-augment")


def test_background_replacement_from_the_command_line(tmp_path, capsys):
    root = str(tmp_path / "walker")
    collect = ["collect", "--env", "dmc:walker-walk", "--frames", "12", "--out", root]
    assert main([*collect, "--no-progress"]) == 0
    assert "background bool[64, 64]" in capsys.readouterr().out
    assert main(["annotate", root, "--oracle", "--frames", "4"]) == 0
    fit = ["train-saliency", root, "--size", "tiny", "--steps", "2", "--no-progress"]
    assert main(fit) == 0
    assert "background replacement: on (probability 0.5)" in capsys.readouterr().out
    assert main([*fit, "--background-augment", "0"]) == 0
    assert "background replacement: off (switched off" in capsys.readouterr().out
    plain = str(tmp_path / "plain")
    collect = ["collect", "--env", "dmc:walker-walk", "--frames", "4", "--out", plain]
    assert main([*collect, "--no-background", "--no-progress"]) == 0
    assert "background bool" not in capsys.readouterr().out
