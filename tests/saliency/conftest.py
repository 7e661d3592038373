"""Fixtures of the annotation page's tests (server and browser): a predictor that offers
points to accept, and a fresh dataset to click on."""

import pytest


@pytest.fixture(scope="module")
def fitted_predictor_64(fake_dataset_64, tmp_path_factory):
    """A tiny U-Net that has learnt fake:square's body (40 steps), so it offers points (an
    unfitted predictor's maps are flat, so they offer no point to accept)."""
    from saliency_rl.saliency.fit import fit_predictor

    out = tmp_path_factory.mktemp("fitted64") / "predictor"
    fit_predictor(
        fake_dataset_64, out, size="tiny", steps=40, batch_size=8, lr=3e-3, holdout_frames=[],
        progress=False, device="cpu",
    )  # fmt: skip
    return out


@pytest.fixture
def dataset_64(tmp_path):
    """A fresh fake:square dataset at 64x64 without annotations (tests here write clicks)."""
    from saliency_rl.data.collect import collect

    return collect(
        "fake:square", tmp_path / "fake64", episodes=2, seed=1,
        env_options={"image_size": 64, "episode_length": 10}, progress=False,
    )  # fmt: skip
