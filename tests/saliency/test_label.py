"""label_dataset: uint8 maps for every frame, frames untouched, resumable, one predictor's labels."""

import numpy as np
import pytest

from saliency_rl.data.dataset import Dataset
from saliency_rl.errors import DatasetError
from saliency_rl.saliency.annotations import annotate_with_oracle
from saliency_rl.saliency.fit import fit_predictor
from saliency_rl.saliency.label import label_dataset
from saliency_rl.saliency.predictor import SaliencyPredictor


@pytest.fixture
def predictors(fake_dataset, tmp_path):
    """Two different tiny predictors trained on the fake dataset."""
    annotate_with_oracle(fake_dataset, 6, seed=0)
    for seed in (0, 1):
        fit_predictor(
            fake_dataset, tmp_path / f"p{seed}", size="tiny", steps=3, batch_size=2, seed=seed,
            holdout_frames=[], progress=False,
        )  # fmt: skip
    return tmp_path / "p0", tmp_path / "p1"


def snapshot(dataset):
    return {
        p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (dataset.root / "episodes").iterdir()
    }


def test_labels_every_frame_without_touching_episodes(fake_dataset, predictors):
    before = snapshot(fake_dataset)
    summary = label_dataset(fake_dataset.root, predictors[0], batch_size=8, progress=False)
    assert summary["episodes_labelled"] == 3 and summary["frames_labelled"] == 63
    assert snapshot(fake_dataset) == before  # frames never rewritten

    dataset = Dataset.open(fake_dataset.root)
    assert dataset.has_field("saliency")
    assert dataset.meta["extra_fields"]["saliency"]["provenance"]["model"] == "unet"
    predictor = SaliencyPredictor.load(predictors[0], device="cpu")
    for episode in range(3):
        data = dataset.episode(episode, ["rgb", "saliency"])
        assert data["saliency"].dtype == np.uint8 and data["saliency"].shape == (21, 32, 32)
        assert np.array_equal(data["saliency"], predictor.predict_uint8(data["rgb"]))


def test_resumes_after_a_kill(fake_dataset, predictors, monkeypatch):
    calls = []
    original = SaliencyPredictor.predict_uint8

    def dies_on_second_episode(self, frames):
        calls.append(len(frames))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, frames)

    monkeypatch.setattr(SaliencyPredictor, "predict_uint8", dies_on_second_episode)
    with pytest.raises(KeyboardInterrupt):
        label_dataset(fake_dataset, predictors[0], progress=False)
    monkeypatch.setattr(SaliencyPredictor, "predict_uint8", original)
    # Staged out of sight: nothing declared, no field folder a reader would half-trust.
    assert not (fake_dataset.root / "fields" / "saliency").exists()
    assert "saliency" not in Dataset.open(fake_dataset.root).meta["extra_fields"]
    staged = fake_dataset.root / "fields" / ".saliency.partial"
    assert sorted(p.name for p in staged.glob("*.npz")) == ["episode_000000.npz"]  # no tmp file

    summary = label_dataset(fake_dataset, predictors[0], progress=False)
    assert (summary["episodes_skipped"], summary["episodes_labelled"]) == (1, 2)
    assert not staged.exists() and Dataset.open(fake_dataset.root).has_field("saliency")
    again = label_dataset(fake_dataset, predictors[0], progress=False)
    assert (again["episodes_skipped"], again["frames_labelled"]) == (3, 0)


def test_another_predictors_labels_need_overwrite(fake_dataset, predictors):
    label_dataset(fake_dataset, predictors[0], progress=False)
    with pytest.raises(DatasetError, match="another predictor.*--overwrite"):
        label_dataset(fake_dataset, predictors[1], progress=False)
    summary = label_dataset(fake_dataset, predictors[1], overwrite=True, progress=False)
    assert summary["episodes_labelled"] == 3
    dataset = Dataset.open(fake_dataset.root)
    assert dataset.meta["extra_fields"]["saliency"]["provenance"]["predictor"].endswith("p1")
    expected = SaliencyPredictor.load(predictors[1], device="cpu").predict_uint8(
        dataset.episode(2, ["rgb"])["rgb"]
    )
    assert np.array_equal(dataset.episode(2, ["saliency"])["saliency"], expected)
