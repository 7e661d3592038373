"""The PiCANet-style model: side outputs per stage, local 7x7 dilated and global attention."""

import pytest
import torch
import torch.nn.functional as F

from saliency_rl.saliency.picanet import (
    GlobalAttention,
    PiCANet,
    ReNet,
    local_attention,
    picanet_small,
    picanet_tiny,
)


@pytest.mark.parametrize("size, sides", [(32, [4, 8, 16, 32]), (84, [10, 21, 42, 84])])
def test_a_side_output_per_decoder_stage_coarsest_first(size, sides):
    model = picanet_tiny((size, size))
    outputs = model(torch.rand(2, 3, size, size))
    assert [tuple(o.shape) for o in outputs] == [(2, 1, s, s) for s in sides]


def test_stage_layout_and_rebuild_from_config():
    model = picanet_small()
    kinds = [type(stage.attention).__name__ for stage in model.decoder]
    assert kinds == ["GlobalAttention", "LocalAttention", "LocalAttention", "NoneType"]
    tiny = picanet_tiny(in_channels=1)
    rebuilt = PiCANet(**tiny.config)
    rebuilt.load_state_dict(tiny.state_dict())
    assert rebuilt(torch.rand(1, 1, 32, 32))[-1].shape == (1, 1, 32, 32)


def test_local_attention_is_a_weighted_sum_over_the_dilated_7x7_neighbourhood():
    features = torch.randn(2, 3, 9, 11)
    weights = torch.randn(2, 49, 9, 11).softmax(dim=1)
    # Reference: F.unfold's columns are the 7x7 neighbourhood sampled with dilation 2.
    patches = F.unfold(features, 7, dilation=2, padding=6).view(2, 3, 49, 99)
    expected = (patches * weights.view(2, 1, 49, 99)).sum(dim=2).view(2, 3, 9, 11)
    assert torch.allclose(local_attention(features, weights), expected, atol=1e-6)

    # An impulse reaches exactly the 49 pixels at offsets {-6, -4, ..., 6}^2 around it.
    impulse = torch.zeros(1, 1, 21, 21)
    impulse[0, 0, 10, 10] = 1.0
    reached = local_attention(impulse, torch.full((1, 49, 21, 21), 1 / 49))[0, 0] > 0
    rows, cols = torch.nonzero(reached, as_tuple=True)
    offsets = {(int(r) - 10, int(c) - 10) for r, c in zip(rows, cols, strict=True)}
    assert offsets == {(a, b) for a in range(-6, 7, 2) for b in range(-6, 7, 2)}

    # One-hot weights on neighbour k pick the feature at that neighbour's offset.
    k = 2 * 7 + 5  # row offset (2 - 3) * 2 = -2, column offset (5 - 3) * 2 = +4
    one_hot = torch.zeros(1, 49, 21, 21)
    one_hot[:, k] = 1.0
    ramp = torch.arange(21.0 * 21).view(1, 1, 21, 21)
    assert local_attention(ramp, one_hot)[0, 0, 10, 10] == ramp[0, 0, 8, 14]


def test_global_attention_sees_every_position():
    torch.manual_seed(0)
    module = GlobalAttention(4, grid=(4, 5))
    features = torch.randn(1, 4, 4, 5, requires_grad=True)
    module(features)[0, :, 0, 0].sum().backward()  # one output pixel ...
    assert (features.grad.abs().sum(dim=1) > 0).all()  # ... depends on every input position
    assert ReNet(4, 3)(features).shape == (1, 6, 4, 5)
    with pytest.raises(ValueError, match="grid"):
        module(torch.randn(1, 4, 5, 5))
