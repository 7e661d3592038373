"""RAD's augmentation (Laskin et al., NeurIPS 2020): a random translation of every frame.

RAD and DrQ found random crops / translations the augmentation that helps pixel SAC most.
We translate by up to ``pad`` pixels with the border pixels repeated (DrQ's pad-and-crop,
RAD's ``translate``), which keeps the frame size, so the same CNN serves augmented and
plain frames. The offsets are drawn per sample, once for all of an observation's image
fields, so a saliency map stays aligned with its frame. Applied by the agent to every
sampled batch, never to what is stored.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

IMAGE_FIELDS = ("rgb", "saliency")  # observation fields that are (N, C, H, W) images


def random_shift(
    images: torch.Tensor, pad: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Translate each image by up to ``pad`` pixels in x and y, repeating the border.

    images: (N, C, H, W), any dtype (uint8 frames stay uint8)
    returns: (N, C, H, W), a new tensor
    """
    return shift_fields({"x": images}, pad, generator)["x"]


def shift_fields(
    obs: Mapping[str, torch.Tensor], pad: int, generator: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """``random_shift`` of the image fields of an observation batch, one offset per sample."""
    images = {k: v for k, v in obs.items() if k in IMAGE_FIELDS}
    if not images or pad <= 0:
        return dict(obs)
    first = next(iter(images.values()))
    n, _, height, width = first.shape
    device = first.device
    where = generator.device if generator is not None else device
    offsets = torch.randint(0, 2 * pad + 1, (2, n, 1), generator=generator, device=where)
    offsets = offsets.to(device) - pad
    # Source row / column of every output pixel, clamped: the border repeats (replicate pad).
    rows = (torch.arange(height, device=device) + offsets[0]).clamp_(0, height - 1)  # (N, H)
    cols = (torch.arange(width, device=device) + offsets[1]).clamp_(0, width - 1)  # (N, W)
    batch = torch.arange(n, device=device)[:, None, None]
    out = dict(obs)
    for name, x in images.items():
        # Advanced indices around a slice put their dims first: (N, H, W, C) -> (N, C, H, W).
        out[name] = x[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()
    return out
