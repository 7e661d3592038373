"""The small U-Net: full-resolution logits for any frame size, rebuilt from its config."""

import pytest
import torch

from saliency_rl.saliency.unet import UNet, coordinate_channels, unet_small, unet_tiny, upsample_to


@pytest.mark.parametrize("size", [32, 64, 84])
def test_output_is_one_full_resolution_logit_map(size):
    model = unet_tiny()
    outputs = model(torch.rand(2, 3, size, size))
    assert len(outputs) == 1 and outputs[0].shape == (2, 1, size, size)


def test_grey_frames_and_rebuild_from_config():
    model = unet_tiny(in_channels=1, coord_channels=False)
    assert model(torch.rand(2, 1, 32, 32))[0].shape == (2, 1, 32, 32)
    rebuilt = UNet(**model.config)
    rebuilt.load_state_dict(model.state_dict())
    assert unet_small().config["widths"] == [8, 16, 32, 64]


def test_initial_output_is_the_background_prior():
    model = unet_tiny().eval()
    with torch.no_grad():
        saliency = torch.sigmoid(model(torch.rand(1, 3, 32, 32))[0])
    assert saliency.mean() < 0.05  # maps are mostly background


def test_coordinate_channels_and_upsampling():
    x = coordinate_channels(torch.zeros(1, 3, 4, 5))
    assert x.shape == (1, 5, 4, 5)
    assert torch.allclose(x[0, 3, :, 0], torch.linspace(-1, 1, 4))  # y down the rows
    assert torch.allclose(x[0, 4, 0], torch.linspace(-1, 1, 5))  # x along the columns
    small = torch.arange(4.0).view(1, 1, 2, 2)
    assert torch.equal(
        upsample_to(small, torch.zeros(1, 1, 4, 4))[0, 0, :, 0], torch.tensor([0.0, 0, 2, 2])
    )
    assert upsample_to(small, torch.zeros(1, 1, 5, 5)).shape == (1, 1, 5, 5)  # odd sizes
