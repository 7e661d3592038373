"""Pretraining on Atari frame pairs (attention module and Transporter) through the CLI: a
resumed run ends with the weights and metrics of one never stopped; a full --out is never
overwritten and a resume without a checkpoint is refused, each with one clear line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from saliency_rl.cli import main
from saliency_rl.pretrain import pair_training
from saliency_rl.pretrain.attention_pretrain import AttentionPretrainConfig, pretrain_attention
from saliency_rl.pretrain.pair_training import FramePairs, sample_pair_batch

pytest.importorskip("ale_py")

COMMANDS = {
    "pretrain-attention": [],
    "pretrain-transporter": ["--keypoints", "2", "--width", "4"],
}


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    data = tmp_path_factory.mktemp("pairs") / "Pong"
    assert main(["collect", "--env", "atari:Pong", "--frames", "30", "--out", str(data)]) == 0
    return data


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_resume_continues_bit_for_bit(frames, tmp_path, command):
    base = [command, str(frames), *COMMANDS[command], "--batch-size", "2", "--log-every", "1"]
    base += ["--checkpoint-every", "2", "--no-progress", "--device", "cpu"]
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert main(base + ["--out", str(whole), "--steps", "4"]) == 0
    assert main(base + ["--out", str(split), "--steps", "2"]) == 0
    assert main(base + ["--out", str(split), "--steps", "4", "--resume"]) == 0
    a, b = (load_file(d / "model.safetensors") for d in (whole, split))
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    saved = [json.loads((d / "config.json").read_text())["provenance"] for d in (whole, split)]
    assert saved[0]["steps"] == saved[1]["steps"] == 4
    assert saved[0]["final_loss"] == saved[1]["final_loss"]

    def losses(directory):
        lines = (directory / "metrics.csv").read_text().splitlines()
        return [line.split(",")[3] for line in lines[1:]]  # step, time, pairs/s, loss

    assert len(losses(split)) == 4 and losses(whole) == losses(split)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_precision_auto_is_recorded_kept_on_resume_and_leaves_fp32_runs_alone(
    frames, tmp_path, command, capsys
):
    base = [command, str(frames), *COMMANDS[command], "--batch-size", "2", "--log-every", "1"]
    base += ["--checkpoint-every", "2", "--no-progress", "--device", "cpu"]
    auto, fp32 = tmp_path / "auto", tmp_path / "fp32"
    assert main(base + ["--out", str(auto), "--steps", "2", "--precision", "auto"]) == 0
    recorded = json.loads((auto / "config.json").read_text())["provenance"]["precision"]
    assert recorded["requested"] == "auto" and set(recorded["timings_ms"]) == {"fp32", "bf16"}
    if recorded["chosen"] == "fp32":  # the trial touched neither weights nor random streams
        assert main(base + ["--out", str(fp32), "--steps", "2"]) == 0
        a, b = (load_file(d / "model.safetensors") for d in (auto, fp32))
        assert all(torch.equal(a[name], b[name]) for name in a)
    assert main(base + ["--out", str(auto), "--steps", "4", "--resume"]) == 0
    again = json.loads((auto / "config.json").read_text())["provenance"]["precision"]
    assert again == recorded
    bf16 = tmp_path / "bf16"
    assert main(base + ["--out", str(bf16), "--steps", "1", "--precision", "bf16"]) == 0
    capsys.readouterr()
    assert main(base + ["--out", str(tmp_path / "bad"), "--precision", "fp16"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "unknown precision 'fp16'" in error[0], error


def test_resume_between_rows_logs_the_rows_of_an_unbroken_run(frames, tmp_path, monkeypatch):
    # A checkpoint at step 2, rows at steps 3 and 5: killed at step 3, the resumed run's row
    # at 3 still averages steps 1-3, steps 1 and 2 coming from the checkpoint.
    config = AttentionPretrainConfig(batch_size=2, log_every=3, checkpoint_every=2)
    settings = dict(steps=5, config=config, device="cpu", progress=False)
    whole, split = tmp_path / "whole", tmp_path / "split"
    pretrain_attention(frames, whole, **settings)
    calls = []

    def killed_at_step_3(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return sample_pair_batch(*args)

    monkeypatch.setattr(pair_training, "sample_pair_batch", killed_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        pretrain_attention(frames, split, **settings)
    monkeypatch.undo()
    assert json.loads((split / "config.json").read_text())["provenance"]["steps"] == 2
    pretrain_attention(frames, split, resume=True, **settings)

    def rows(directory):
        lines = (directory / "metrics.csv").read_text().splitlines()
        return [line.split(",")[:1] + line.split(",")[3:] for line in lines]  # not time, pairs/s

    assert [r[0] for r in rows(split)] == ["step", "3", "5"] and rows(whole) == rows(split)
    assert list((split / "tb").glob("events.out.tfevents.*")), "TensorBoard events"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_refuses_a_full_out_and_a_resume_without_checkpoint(frames, tmp_path, capsys, command):
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("keep me")
    base = [command, str(frames), *COMMANDS[command], "--steps", "1", "--no-progress"]
    assert main(base + ["--out", str(full)]) == 2
    err = capsys.readouterr().err.strip()
    assert "exists and is not empty" in err and len(err.splitlines()) == 1, err
    assert (full / "notes.txt").read_text() == "keep me"
    assert main(base + ["--out", str(tmp_path / "none"), "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert "checkpoint to resume" in err and len(err.splitlines()) == 1, err


def test_pairs_come_from_one_episode_within_the_gap():
    class _Episodes:  # two episodes of 5 and 3 frames, each frame's value its global index
        root, num_episodes = "mem", 2

        def episode(self, i, fields):
            start, length = (0, 5) if i == 0 else (5, 3)
            frames = np.arange(start, start + length, dtype=np.uint8)
            return {"rgb": np.broadcast_to(frames[:, None, None, None], (length, 1, 84, 84))}

    pairs = FramePairs(_Episodes(), max_gap=2)
    source, target = sample_pair_batch([pairs], 400, np.random.default_rng(0), torch.device("cpu"))
    s, t = source[:, 0, 0, 0].long(), target[:, 0, 0, 0].long()
    assert torch.all(s != t) and torch.all((s - t).abs() <= 2)
    assert torch.all((s < 5) == (t < 5))  # never across the episode boundary
    assert set(t.tolist()) == set(range(8))  # every frame is a target
