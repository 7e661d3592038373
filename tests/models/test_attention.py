"""The self-supervised attention module: shapes, the thresholded loss, no gradient through the
source branch, learning on real MsPacman frames, and checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saliency_rl.checkpoint import save_checkpoint
from saliency_rl.errors import CheckpointError
from saliency_rl.models.attention import (
    SelfSupervisedAttention,
    load_attention,
    save_attention,
    thresholded_squared_error,
)


@pytest.fixture(scope="module")
def mspacman_frames(tmp_path_factory):
    """uint8 (41, 1, 84, 84): one short random-policy MsPacman episode."""
    pytest.importorskip("ale_py")
    from saliency_rl.data.collect import collect

    dataset = collect(
        "atari:MsPacman", tmp_path_factory.mktemp("pacman") / "d", frames=41, progress=False
    )
    return dataset.episode(0, ["rgb"])["rgb"]


def frames(n: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, 1, 84, 84), np.uint8))


def test_shapes_and_mask_range():
    torch.manual_seed(0)
    module = SelfSupervisedAttention()
    source, target = frames(3, 0), frames(3, 1)
    assert module.encode(target).shape == (3, 32, 7, 7)
    mask = module.mask(target).detach()
    assert mask.shape == (3, 1, 7, 7)  # the Atari CNN's last feature map
    assert 0.0 <= float(mask.min()) and float(mask.max()) <= 1.0
    out = module(source, target)
    assert out.reconstruction.shape == out.autoencoded.shape == (3, 1, 84, 84)
    assert out.target_mask.shape == out.source_mask.shape == (3, 1, 7, 7)
    # uint8 and [0, 1] float frames are the same input
    torch.testing.assert_close(module.mask(target.float() / 255), mask)
    with pytest.raises(ValueError, match=r"\(N, 1, 84, 84\)"):
        module.mask(torch.zeros(2, 4, 84, 84))


def test_threshold_ignores_errors_below_sqrt_delta():
    delta = 0.01  # errors below sqrt(delta) = 0.1 are ignored
    rng = np.random.default_rng(0)
    target = torch.from_numpy(rng.uniform(0.2, 0.8, (2, 1, 84, 84)).astype(np.float32))
    signs = torch.from_numpy(rng.choice([-1.0, 1.0], (2, 1, 84, 84)).astype(np.float32))
    close = (target + 0.099 * signs).requires_grad_()
    loss = thresholded_squared_error(close, target, delta)
    loss.backward()
    assert float(loss.detach()) == 0.0 and float(close.grad.abs().max()) == 0.0
    far = target + 0.101 * signs
    assert float(thresholded_squared_error(far, target, delta)) == pytest.approx(0.101**2, 1e-3)
    # one pixel off by more counts, alone
    one = close.detach().clone()
    one[0, 0, 10, 10] = target[0, 0, 10, 10] + 0.5
    assert float(thresholded_squared_error(one, target, delta)) == pytest.approx(
        0.25 / target.numel(), 1e-3
    )


def test_source_branch_gets_no_gradient():
    torch.manual_seed(0)
    module = SelfSupervisedAttention()
    source = (frames(2, 0).float() / 255).requires_grad_()
    target = (frames(2, 1).float() / 255).requires_grad_()
    loss, metrics = module.loss(source, target)
    loss.backward()
    assert source.grad is None  # computed without a graph
    assert target.grad is not None and float(target.grad.abs().sum()) > 0
    assert set(metrics) == {
        "attention_loss",
        "reconstruction_loss",
        "autoencoder_loss",
        "mask_mean",
    }
    # The parameters' gradients do not depend on how the source frame could move them:
    # the same loss with the source branch's outputs as constants gives the same gradients.
    grads = [p.grad.clone() for p in module.parameters() if p.grad is not None]
    module.zero_grad()
    loss_again, _ = module.loss(source.detach(), target.detach())
    loss_again.backward()
    again = [p.grad for p in module.parameters() if p.grad is not None]
    for a, b in zip(grads, again, strict=True):
        torch.testing.assert_close(a, b)


def test_loss_falls_on_real_mspacman_frames(mspacman_frames):
    torch.manual_seed(0)
    module = SelfSupervisedAttention().to(memory_format=torch.channels_last)
    rng = np.random.default_rng(0)
    target_index = rng.integers(0, len(mspacman_frames), 8)
    gaps = rng.integers(1, 20, 8) * rng.choice([-1, 1], 8)
    source_index = np.clip(target_index + gaps, 0, len(mspacman_frames) - 1)
    source = torch.from_numpy(mspacman_frames[source_index])
    target = torch.from_numpy(mspacman_frames[target_index])
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        loss, _ = module.loss(source, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0], losses


def test_checkpoint_round_trip_and_foreign_checkpoint(tmp_path):
    torch.manual_seed(0)
    module = SelfSupervisedAttention()
    save_attention(module, tmp_path / "att", {"games": ["MsPacman"]})
    loaded, config = load_attention(tmp_path / "att")
    assert config["provenance"]["games"] == ["MsPacman"]
    for name, tensor in module.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor)
    save_checkpoint(tmp_path / "other", {"model": "MultiMAE"}, {"w": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="not a SelfSupervisedAttention"):
        load_attention(tmp_path / "other")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_attention(tmp_path / "missing")
