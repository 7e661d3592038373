"""Transporter: shapes, keypoints in the frame, the loss falls on a fixed batch, checkpoints."""

from __future__ import annotations

import pytest
import torch

from saliency_rl.errors import CheckpointError
from saliency_rl.models.attention import SelfSupervisedAttention, save_attention
from saliency_rl.models.transporter import (
    Transporter,
    gaussian_maps,
    load_transporter,
    save_transporter,
    spatial_softmax,
)


def _moving_square_pairs(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Grey frames with a bright square that moves between source and target."""
    g = torch.Generator().manual_seed(0)
    source = torch.full((n, 1, 84, 84), 20, dtype=torch.uint8)
    target = source.clone()
    for i in range(n):
        (y0, x0, y1, x1) = torch.randint(8, 70, (4,), generator=g).tolist()
        source[i, 0, y0 : y0 + 8, x0 : x0 + 8] = 230
        target[i, 0, y1 : y1 + 8, x1 : x1 + 8] = 230
    return source, target


def test_shapes_and_keypoints_inside_the_frame() -> None:
    torch.manual_seed(0)
    model = Transporter(4, width=8)
    source, target = _moving_square_pairs(3)
    out = model(source, target)
    assert out.reconstruction.shape == (3, 1, 84, 84)
    assert out.target_points.shape == (3, 4, 2)
    points = model.keypoints(target)
    assert points.shape == (3, 4, 2)
    assert ((points >= 1.5) & (points <= 81.5)).all()  # centres of the 4-pixel feature cells


def test_spatial_softmax_finds_a_sharp_peak_and_gaussians_centre_on_it() -> None:
    heat = torch.full((1, 1, 21, 21), -50.0)
    heat[0, 0, 5, 15] = 50.0
    point = spatial_softmax(heat)[0, 0]
    torch.testing.assert_close(point, torch.tensor([0.5, -0.5]))  # column 15, row 5 of 21
    maps = gaussian_maps(point.view(1, 1, 2), (21, 21), 0.1)
    assert maps[0, 0].argmax().item() == 5 * 21 + 15
    assert maps.max().item() == pytest.approx(1.0)


@pytest.mark.slow
def test_loss_falls_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    model = Transporter(2, width=8)
    source, target = _moving_square_pairs(8)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss, metrics = model.loss(source, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(metrics["transporter_loss"])
    assert losses[-1] < 0.5 * losses[0], losses


def test_no_gradient_reaches_the_source_branch() -> None:
    torch.manual_seed(0)
    model = Transporter(2, width=8)
    source, target = _moving_square_pairs(2)
    source = source.float().div(255).requires_grad_(True)
    loss, _ = model.loss(source, target)
    loss.backward()
    assert source.grad is None


def test_checkpoint_round_trip_and_wrong_model(tmp_path) -> None:
    torch.manual_seed(0)
    model = Transporter(3, width=8).eval()
    save_transporter(model, tmp_path / "t", {"games": ["MsPacman"]})
    loaded, config = load_transporter(tmp_path / "t")
    frames = _moving_square_pairs(2)[1]
    torch.testing.assert_close(loaded.keypoints(frames), model.keypoints(frames))
    assert config["provenance"]["games"] == ["MsPacman"]
    save_attention(SelfSupervisedAttention(1), tmp_path / "a", {})
    with pytest.raises(CheckpointError, match="not a Transporter"):
        load_transporter(tmp_path / "a")
