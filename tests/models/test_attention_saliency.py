"""Saliency with no person: the attention module pretrained on control frames (colour,
64x64, a finer mask grid) labels a dataset and feeds SAC as its saliency source."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from saliency_rl.cli import main
from saliency_rl.models.attention import SelfSupervisedAttention


@pytest.mark.parametrize("size,grid", [(64, 16), (64, 8), (64, 32), (84, 21)])
def test_the_control_layout_gives_the_grid_asked_for(size, grid):
    module = SelfSupervisedAttention(3, size, grid)
    frames = torch.randint(0, 256, (2, 3, size, size), dtype=torch.uint8)
    out = module(frames, frames)
    assert out.target_mask.shape == (2, 1, grid, grid)
    assert out.reconstruction.shape == (2, 3, size, size)
    assert module.config()["kwargs"] == {"in_channels": 3, "image_size": size, "grid": grid}


def test_atari_keeps_its_layout_and_config():
    module = SelfSupervisedAttention(1)
    assert module.grid == 7 and module.config()["kwargs"] == {"in_channels": 1}
    with pytest.raises(ValueError, match="power of two"):
        SelfSupervisedAttention(3, 64, 12)


@pytest.fixture(scope="module")
def attention_64(tmp_path_factory):
    root = tmp_path_factory.mktemp("attention64")
    data, checkpoint = root / "square", root / "attention"
    argv = ["collect", "--env", "fake:square", "--episodes", "3", "--episode-length", "12"]
    assert main([*argv, "--image-size", "64", "--out", str(data), "--no-progress"]) == 0
    argv = ["pretrain-attention", str(data), "--steps", "3", "--batch-size", "4"]
    assert main([*argv, "--out", str(checkpoint), "--no-progress", "--device", "cpu"]) == 0
    return data, checkpoint


def test_pretrain_on_colour_frames_and_label_a_dataset(attention_64, capsys):
    data, checkpoint = attention_64
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["kwargs"] == {"in_channels": 3, "image_size": 64, "grid": 32}
    assert config["provenance"]["games"] == ["square"]
    argv = ["label", str(data), "--attention", str(checkpoint), "--no-progress", "--device", "cpu"]
    assert main(argv) == 0, capsys.readouterr().err
    meta = json.loads((data / "meta.json").read_text())
    provenance = meta["extra_fields"]["saliency"]["provenance"]
    assert provenance["model"] == "SelfSupervisedAttention"
    from saliency_rl.data.dataset import Dataset

    maps = Dataset.open(data).episode(0, ["saliency"])["saliency"]
    assert maps.shape == (13, 64, 64) and maps.dtype == np.uint8
    assert main(argv) == 0  # resumable: the same module's labels are kept
    assert "skipped 3 episodes" in capsys.readouterr().out


def test_sac_takes_the_attention_module_as_its_saliency_source(attention_64, tmp_path, capsys):
    _, checkpoint = attention_64
    argv = ["train", "sac", "--env", "fake:square", "--image-size", "64", "--saliency-mode"]
    argv += ["rgbs", "--predictor", str(checkpoint), "--total-steps", "6", "--init-steps", "3"]
    argv += ["--batch-size", "2", "--hidden-dim", "8", "--feature-dim", "4", "--conv-layers", "2"]
    argv += ["--episode-length", "5", "--eval-every", "0", "--eval-episodes", "1"]
    argv += ["--no-progress", "--device", "cpu", "--out", str(tmp_path / "run")]
    assert main(argv) == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "run" / "eval.json").read_text())["final"]["episodes"] == 1


def test_a2c_refuses_a_module_pretrained_on_control_frames(attention_64, tmp_path, capsys):
    _, checkpoint = attention_64
    argv = ["train", "a2c", "--env", "atari:Pong", "--attention", "frozen"]
    argv += ["--attention-checkpoint", str(checkpoint), "--out", str(tmp_path / "a2c")]
    assert main([*argv, "--no-progress"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "grey 84x84, 7x7 mask" in error[0]
