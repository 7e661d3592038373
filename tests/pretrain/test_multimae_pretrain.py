"""MultiMAE pretraining: CLI end to end, exact resume, clear errors, depth and normals."""

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from saliency_rl.cli import main
from saliency_rl.errors import SaliencyRLError
from saliency_rl.models.frozen_encoder import FrozenMultiMAEEncoder
from saliency_rl.models.multimae import ModelError, MultiMAE
from saliency_rl.pretrain.multimae_pretrain import (
    PretrainConfig,
    PretrainError,
    batch_flips,
    batch_indices,
    learning_rate,
    pretrain_multimae,
)
from saliency_rl.saliency.maps import clicks_to_map, map_to_uint8

SIZE = 32
TINY = dict(model_size="tiny", batch_size=4, device="cpu", progress=False)


@pytest.fixture
def labelled(fake_dataset):
    """The fake dataset with oracle saliency maps as its `saliency` field."""
    for e in range(fake_dataset.num_episodes):
        points = fake_dataset.episode(e, ["salient_points"])["salient_points"]
        maps = np.stack([map_to_uint8(clicks_to_map(p, SIZE, SIZE)) for p in points])
        fake_dataset.write_field("saliency", e, maps)
    return fake_dataset


def weights(directory):
    return MultiMAE.from_pretrained(directory).state_dict()


def test_cli_pretrains_end_to_end(labelled, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["pretrain", str(labelled.root), "--modalities", "rgb,saliency", "--steps", "3"]
    argv += ["--batch-size", "4", "--out", str(out), "--model", "tiny", "--device", "cpu"]
    assert main([*argv, "--seed", "1", "--no-progress", "--checkpoint-every", "2"]) == 0
    printed = capsys.readouterr().out
    assert "pretrained 3 steps" in printed and "encoder checkpoint" in printed
    checkpoint = out / "checkpoints" / "step_000003"
    for name in ("config.json", "model.safetensors", "training_state/state.json"):
        assert (checkpoint / name).is_file(), name
    assert (out / "checkpoints" / "step_000002").is_dir()
    png = Image.open(out / "reconstructions" / "step_000003.png")
    assert png.mode == "RGB" and png.width > 6 * SIZE and png.height > 4 * SIZE
    with (out / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["step"] for r in rows] == ["1", "2", "3"]
    assert {"loss", "loss_rgb", "loss_saliency", "lr"} <= set(rows[0])
    assert list((out / "tb").glob("events.out.tfevents.*")), "TensorBoard events"
    encoder = FrozenMultiMAEEncoder.load(out, mode="rgb+saliency-pretrain-only", device="cpu")
    assert encoder(labelled.episode(0)["rgb"][:2]).shape == (2, 32)
    # The same command again without --resume refuses to overwrite the run.
    assert main([*argv, "--no-progress"]) == 2
    assert "pass --resume" in capsys.readouterr().err


def test_resume_is_exact(labelled, tmp_path):
    settings = dict(modalities=("rgb", "saliency"), steps=4, checkpoint_every=2, seed=3, **TINY)
    straight = pretrain_multimae(labelled, tmp_path / "straight", **settings)
    half = pretrain_multimae(labelled, tmp_path / "halves", stop_at=2, **settings)
    assert half.step == 2 and half.checkpoint.name == "step_000002"
    resumed = pretrain_multimae(labelled, tmp_path / "halves", resume=True, **settings)
    assert resumed.resumed_from == 2 and resumed.step == 4
    a, b = weights(straight.checkpoint), weights(resumed.checkpoint)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    # Same losses at every step, in one go or in two halves.
    columns = [
        [line.split(",")[:4] for line in (tmp_path / d / "metrics.csv").read_text().splitlines()]
        for d in ("straight", "halves")
    ]
    assert len(columns[0]) == 5 and columns[0] == columns[1]
    # Settings that would change the run are refused on resume.
    with pytest.raises(PretrainError, match="settings differ"):
        pretrain_multimae(labelled, tmp_path / "halves", resume=True, **{**settings, "seed": 4})


def test_precision_auto_is_timed_recorded_and_leaves_the_run_as_fp32_would(labelled, tmp_path):
    """auto times both on a copy of the model with a forked random stream; where it keeps
    fp32 the weights equal an fp32 run's, and a resumed run keeps the recorded choice."""
    import json

    settings = dict(modalities=("rgb", "saliency"), steps=2, checkpoint_every=1, seed=3, **TINY)
    auto = pretrain_multimae(labelled, tmp_path / "auto", precision="auto", stop_at=1, **settings)
    recorded = json.loads((auto.checkpoint / "config.json").read_text())["precision"]
    assert recorded["requested"] == "auto" and set(recorded["timings_ms"]) == {"fp32", "bf16"}
    assert "MultiMAE (rgb+saliency, tiny)" in recorded["trial"]
    if recorded["chosen"] == "fp32":
        fp32 = pretrain_multimae(labelled, tmp_path / "fp32", stop_at=1, **settings)
        a, b = weights(auto.checkpoint), weights(fp32.checkpoint)
        assert all(torch.equal(a[name], b[name]) for name in a)
    resumed = pretrain_multimae(labelled, tmp_path / "auto", precision="auto", resume=True,
                                **settings)  # fmt: skip
    assert json.loads((resumed.checkpoint / "config.json").read_text())["precision"] == recorded
    bf16 = pretrain_multimae(labelled, tmp_path / "bf16", precision="bf16", **settings)
    assert np.isfinite(bf16.losses["loss"])
    with pytest.raises(SaliencyRLError, match="unknown precision 'fp8'"):
        pretrain_multimae(labelled, tmp_path / "bad", precision="fp8", **settings)
    assert not (tmp_path / "bad").exists()


def test_missing_field_and_unknown_modality_are_one_line_errors(fake_dataset, tmp_path, capsys):
    base = ["pretrain", str(fake_dataset.root), "--steps", "2", "--model", "tiny", "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no saliency field" in err[0] and "saliency-rl label" in err[0]
    assert main([*base, "--out", str(tmp_path / "b"), "--modalities", "rgb,heat"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown modality 'heat'" in err[0]
    assert (
        main([*base, "--out", str(tmp_path / "c"), "--modalities", "rgb", "--patch-size", "5"]) == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not divisible by the patch size 5" in err[0]


def test_depth_and_normals_from_a_depth_field(labelled, tmp_path):
    rng = np.random.default_rng(0)
    for e in range(labelled.num_episodes):
        length = int(labelled.episode_lengths[e])
        depth = (1.0 + rng.random((length, SIZE, SIZE))).astype(np.float16)
        labelled.write_field("depth", e, depth)
    summary = pretrain_multimae(
        labelled, tmp_path / "run", modalities=("rgb", "saliency", "depth", "normals"),
        steps=2, **TINY,
    )  # fmt: skip
    assert set(summary.losses) == {"loss", "rgb", "saliency", "depth", "normals"}
    assert all(np.isfinite(v) for v in summary.losses.values())
    assert summary.reconstruction_png.is_file()


def test_plain_mae_and_missing_depth(fake_dataset, tmp_path):
    summary = pretrain_multimae(
        fake_dataset, tmp_path / "mae", modalities=("rgb",), steps=2, **TINY
    )
    assert set(summary.losses) == {"loss", "rgb"}
    with pytest.raises(Exception, match="no depth field"):
        pretrain_multimae(fake_dataset, tmp_path / "d", modalities=("rgb", "normals"), **TINY)
    with pytest.raises(ModelError, match="unknown modality"):
        pretrain_multimae(fake_dataset, tmp_path / "u", modalities=("rgb", "heat"), **TINY)


def test_schedule_data_order_and_flips():
    config = PretrainConfig(steps=100, lr=1e-3, warmup=10)
    rates = [learning_rate(s, config) for s in range(100)]
    assert rates[0] == pytest.approx(1e-4) and rates[9] == pytest.approx(1e-3)
    assert rates[10] == pytest.approx(1e-3) and rates[-1] < 1e-5
    assert all(a >= b for a, b in zip(rates[10:], rates[11:], strict=False))
    # Each epoch visits every frame once; batches cross epoch boundaries.
    seen = np.concatenate([batch_indices(s, 4, 10, seed=0) for s in range(5)])
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:20]) == list(range(10))
    assert np.array_equal(batch_indices(3, 4, 10, 0), batch_indices(3, 4, 10, 0))
    flips = np.concatenate([batch_flips(s, 64, 0, 0.5) for s in range(20)])
    assert 0.4 < flips.mean() < 0.6 and not batch_flips(0, 64, 0, 0.0).any()


def test_interrupt_writes_a_checkpoint_to_resume_from(fake_dataset, tmp_path):
    def interrupt(step, metrics):
        if step == 2:
            raise KeyboardInterrupt

    settings = dict(modalities=("rgb",), steps=3, checkpoint_every=10, **TINY)
    with pytest.raises(KeyboardInterrupt):
        pretrain_multimae(fake_dataset, tmp_path / "run", callback=interrupt, **settings)
    assert (tmp_path / "run" / "checkpoints" / "step_000002" / "model.safetensors").is_file()
    summary = pretrain_multimae(fake_dataset, tmp_path / "run", resume=True, **settings)
    assert summary.resumed_from == 2 and summary.step == 3
