"""fit_predictor on the fake dataset: files, report, determinism, overfitting; the predictor API."""

import json

import numpy as np
import pytest
import torch

from saliency_rl.checkpoint import load_checkpoint
from saliency_rl.errors import CheckpointError, DatasetError
from saliency_rl.saliency.annotations import annotate_with_oracle
from saliency_rl.saliency.augment import AugmentConfig
from saliency_rl.saliency.fit import annotated_data, fit_predictor, split_frames
from saliency_rl.saliency.predictor import MODELS, SaliencyPredictor


@pytest.fixture
def annotated(fake_dataset):
    annotate_with_oracle(fake_dataset, 10, seed=0)
    return fake_dataset


TINY = {"size": "tiny", "steps": 8, "batch_size": 4, "progress": False}


@pytest.mark.parametrize("model", ["unet", "picanet"])
def test_fit_writes_checkpoint_report_and_preview(annotated, tmp_path, model):
    out = tmp_path / model
    report = fit_predictor(annotated, out, model=model, holdout=0.2, **TINY)
    assert {p.name for p in out.iterdir()} == {
        "config.json",
        "model.safetensors",
        "report.json",
        "preview.png",
    }
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(report))
    assert len(report["train_frames"]) == 8 and len(report["holdout_frames"]) == 2
    held = report["holdout_metrics"]
    assert 0 <= held["max_f_beta"] <= 1 and 0 <= held["mae"] <= 1 and held["frames"] == 2
    config, _ = load_checkpoint(out)
    assert config["model"] == model and config["training"]["steps"] == 8
    assert config["image_size"] == [32, 32]


def test_same_seed_same_weights(annotated, tmp_path):
    def weights(name, seed):
        fit_predictor(annotated, tmp_path / name, seed=seed, **TINY)
        return load_checkpoint(tmp_path / name)[1]

    first, second, other = weights("a", 0), weights("b", 0), weights("c", 1)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_precision_auto_is_recorded_and_an_fp32_choice_changes_no_weight(annotated, tmp_path):
    report = fit_predictor(annotated, tmp_path / "auto", precision="auto", **TINY)
    recorded = report["precision"]
    assert recorded["requested"] == "auto" and set(recorded["timings_ms"]) == {"fp32", "bf16"}
    if recorded["chosen"] == "fp32":  # the trial drew from none of the fit's streams
        fit_predictor(annotated, tmp_path / "fp32", **TINY)
        a, b = (load_checkpoint(tmp_path / d)[1] for d in ("auto", "fp32"))
        assert all(torch.equal(a[k], b[k]) for k in a)
    bf16 = fit_predictor(annotated, tmp_path / "bf16", precision="bf16", **TINY)
    assert bf16["precision"]["chosen"] == "bf16" and np.isfinite(bf16["final_loss"])
    with pytest.raises(ValueError, match="unknown precision"):
        fit_predictor(annotated, tmp_path / "bad", precision="fp16", **TINY)
    assert not (tmp_path / "bad").exists()


def test_tiny_model_overfits_five_frames(fake_dataset, tmp_path):
    annotate_with_oracle(fake_dataset, 5, seed=0)
    report = fit_predictor(
        fake_dataset,
        tmp_path / "overfit",
        size="tiny",
        steps=80,
        batch_size=8,
        lr=1e-2,
        holdout_frames=[],
        augment=AugmentConfig(0, 0, 0, 0, 0, 0, shift=0, degrees=0, scale=0),
        progress=False,
    )
    # Cross-entropy with soft targets bottoms out at the targets' own entropy.
    _, maps = annotated_data(fake_dataset, report["train_frames"])
    y = maps.clip(1e-7, 1 - 1e-7)
    floor = float(np.mean(-y * np.log(y) - (1 - y) * np.log(1 - y)))
    assert report["final_loss"] - floor < 0.3 * (report["initial_loss"] - floor)
    assert report["train_metrics"]["max_f_beta"] > 0.9 and report["holdout_metrics"] is None


def test_split_and_bad_inputs(fake_dataset, tmp_path):
    train, held = split_frames(range(5), 0.2, seed=0)
    assert len(train) == 4 and len(held) == 1 and sorted(train + held) == list(range(5))
    assert split_frames([3], 0.5, seed=0) == ([3], [])
    with pytest.raises(DatasetError, match="no annotated frames"):
        fit_predictor(fake_dataset, tmp_path / "x", **TINY)
    annotate_with_oracle(fake_dataset, 3, seed=0)
    with pytest.raises(DatasetError, match="not annotated"):
        fit_predictor(fake_dataset, tmp_path / "x", holdout_frames=[-5], **TINY)
    with pytest.raises(TypeError, match="unknown FitConfig fields"):
        fit_predictor(fake_dataset, tmp_path / "x", colour=True, **TINY)


def test_predictor_api(annotated, tmp_path):
    fit_predictor(annotated, tmp_path / "p", model="picanet", **TINY)
    predictor = SaliencyPredictor.load(tmp_path / "p", device="cpu", batch_size=16)
    frames = annotated.episode(0, ["rgb"])["rgb"]  # (21, 3, 32, 32) uint8
    maps = predictor.predict(frames)
    assert maps.shape == (21, 32, 32) and maps.dtype == np.float32
    assert 0 <= maps.min() and maps.max() <= 1
    assert np.array_equal(predictor.predict(torch.from_numpy(frames)), maps)
    config, weights = load_checkpoint(tmp_path / "p")
    network = MODELS["picanet"](**config["model_kwargs"])
    network.load_state_dict(weights)
    with torch.no_grad():  # the predictor's folded batch norm changes nothing but rounding
        direct = torch.sigmoid(network.eval()(torch.from_numpy(frames).float() / 255)[-1][:, 0])
    assert np.abs(direct.numpy() - maps).max() < 1e-5
    stored = predictor.predict_uint8(frames)
    assert stored.dtype == np.uint8 and np.abs(stored / 255.0 - maps).max() <= 0.5 / 255 + 1e-6

    tensor = predictor.predict_torch(torch.from_numpy(frames[:3]))
    assert tensor.shape == (3, 32, 32) and tensor.dtype == torch.float32
    assert not tensor.requires_grad and not tensor.is_inference()
    layer = torch.nn.Linear(32, 1)
    layer(tensor).sum().backward()  # usable as input to a network being trained
    assert torch.allclose(tensor, torch.from_numpy(maps[:3]), atol=1e-6)

    with pytest.raises(ValueError, match="trained on 32x32"):
        predictor.predict(np.zeros((1, 3, 16, 16), np.uint8))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        predictor.predict(np.zeros((3, 32, 32), np.uint8))
    with pytest.raises(CheckpointError, match="does not exist"):
        SaliencyPredictor.load(tmp_path / "missing")


def test_background_replacement_on_with_masks_and_said_when_off(tmp_path):
    from saliency_rl.data.collect import collect

    dataset = collect("dmc:cartpole-swingup", tmp_path / "d", frames=12, progress=False)
    annotate_with_oracle(dataset, 6, seed=0)
    report = fit_predictor(dataset, tmp_path / "on", holdout=0, **TINY)
    assert report["background_replacement"] == "on (probability 0.5)"
    off = fit_predictor(dataset, tmp_path / "off", augment=AugmentConfig(background=0), **TINY)
    assert off["background_replacement"].startswith("off (switched off")
    plain = collect("dmc:cartpole-swingup", tmp_path / "p", frames=12, progress=False,
                    background=False)  # fmt: skip
    annotate_with_oracle(plain, 6, seed=0)
    missing = fit_predictor(plain, tmp_path / "missing", **TINY)
    assert "no background masks" in missing["background_replacement"]
