"""ViSaRL's pixel CNN: output shape, input channels and content of each saliency mode."""

import pytest
import torch

from saliency_rl.models.pixel_cnn import (
    SALIENCY_MODES,
    EncoderError,
    PixelCNN,
    combine_inputs,
    conv_output_size,
    input_channels,
)


def frames(n=2, k=1, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    rgb = torch.randint(0, 256, (n, 3 * k, size, size), generator=g, dtype=torch.uint8)
    sal = torch.randint(0, 256, (n, k, size, size), generator=g, dtype=torch.uint8)
    return rgb, sal


def test_paper_cnn_gives_32x11x11_on_64x64():
    assert conv_output_size(64) == 11
    cnn = PixelCNN("rgb")
    convs = [m for m in cnn.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 11
    assert [c.stride for c in convs] == [(2, 2)] + [(1, 1)] * 10
    assert all(c.padding == (0, 0) and c.out_channels == 32 for c in convs)
    rgb, _ = frames()
    out = cnn(rgb)
    assert out.shape == (2, 32 * 11 * 11) == (2, cnn.output_dim)
    assert (out >= 0).all()  # ReLU after the last conv


@pytest.mark.parametrize(
    "mode,channels", [("rgb", 9), ("saliency", 3), ("rgb_x_saliency", 9), ("rgbs", 12)]
)
def test_every_mode_with_stacked_frames(mode, channels):
    assert input_channels(mode, 3) == channels
    cnn = PixelCNN(mode, frames=3)
    assert cnn.convs[0].in_channels == channels
    rgb, sal = frames(k=3)
    out = cnn(rgb, sal)
    assert out.shape == (2, 3872)
    out.sum().backward()  # trainable end to end
    assert cnn.convs[0].weight.grad is not None


def test_modes_combine_frames_and_maps_per_frame():
    rgb, sal = frames(n=1, k=2, size=8)
    x = combine_inputs(rgb, None, "rgb")
    assert torch.allclose(x, rgb.float() / 255 - 0.5)
    assert torch.allclose(combine_inputs(rgb, sal, "saliency"), sal.float() / 255 - 0.5)
    masked = combine_inputs(rgb, sal, "rgb_x_saliency")
    # frame j (channels 3j..3j+2) is multiplied by map j
    expected = rgb.float().view(1, 2, 3, 8, 8) / 255 * (sal.float() / 255)[:, :, None]
    assert torch.allclose(masked, expected.view(1, 6, 8, 8) - 0.5)
    rgbs = combine_inputs(rgb, sal, "rgbs")
    assert rgbs.shape == (1, 8, 8, 8)
    assert torch.allclose(rgbs[:, 3], sal[:, 0].float() / 255 - 0.5)  # frame 0's map
    assert torch.allclose(rgbs[:, 4:7], rgb[:, 3:6].float() / 255 - 0.5)  # frame 1's RGB
    assert torch.allclose(rgbs[:, 7], sal[:, 1].float() / 255 - 0.5)
    # A zero map blanks the masked frames: the map really gates what the CNN sees.
    zero = combine_inputs(rgb, torch.zeros_like(sal), "rgb_x_saliency")
    assert torch.all(zero == -0.5)


def test_clear_errors():
    with pytest.raises(EncoderError, match="valid modes: " + ", ".join(SALIENCY_MODES)):
        PixelCNN("depth")
    with pytest.raises(EncoderError, match="needs saliency maps"):
        PixelCNN("rgbs")(frames()[0], None)
    with pytest.raises(EncoderError, match="do not fit 16x16"):
        PixelCNN("rgb", image_size=16)
