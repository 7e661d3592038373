"""Shared fixtures: small datasets made by the fake environment (logic tests only)."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest  # noqa: E402

from saliency_rl.data.collect import collect  # noqa: E402


@pytest.fixture
def fake_dataset(tmp_path):
    """3 episodes of 20 env steps (21 frames each) of fake:square at 32x32."""
    return collect(
        "fake:square",
        tmp_path / "fake",
        episodes=3,
        seed=0,
        env_options={"image_size": 32, "episode_length": 20},
        progress=False,
    )
