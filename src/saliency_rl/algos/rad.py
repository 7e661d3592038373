"""RAD's / DrQ's augmentation (Laskin et al., NeurIPS 2020; Kostrikov et al., ICLR 2021): a
random translation of every frame.

RAD and DrQ found random crops / translations the augmentation that helps pixel SAC most.
We translate by up to ``pad`` pixels with the border pixels repeated (DrQ's replicate pad
and random crop, RAD's ``translate``), which keeps the frame size, so the same CNN serves
augmented and plain frames. The offsets are drawn per sample, once for all of an
observation's image fields, so a saliency map stays aligned with its frame. Applied by the
agent to every sampled batch, never to what is stored.

How, and why so: frames stay uint8. Each field is replicate-padded once, then every output
row is one contiguous run of the padded frame, so the whole batch is a single
``index_select`` of rows from an overlapping-row view of the padded buffer. At 512 x 9 x 84 x
84 on one CPU thread that takes about 50 ms, against 115 ms for a per-pixel gather
(benchmarks/results/sac_speed_drq.md). DrQ's K and M augmented copies of a batch
(``copies``) are gathered from the same padded frames, each with its own offsets.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

IMAGE_FIELDS = ("rgb", "saliency")  # observation fields that are (N, C, H, W) images


def random_shift(
    images: torch.Tensor, pad: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Translate each image by up to ``pad`` pixels in x and y, repeating the border.

    images: (N, C, H, W), any dtype (uint8 frames stay uint8)
    returns: (N, C, H, W), a new tensor
    """
    return shift_fields({"x": images}, pad, generator)["x"]


def draw_offsets(
    n: int, pad: int, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """(2, n) int64 offsets in [0, 2 pad]: row and column of each crop in the padded frame."""
    where = generator.device if generator is not None else device
    offsets = torch.randint(0, 2 * pad + 1, (2, n, 1), generator=generator, device=where)
    return offsets.to(device)[:, :, 0]


def _replicate_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, H + 2 pad, W + 2 pad), the border repeated."""
    try:
        return F.pad(x, (pad, pad, pad, pad), mode="replicate")
    except (RuntimeError, NotImplementedError):  # a dtype without a replicate kernel here
        height, width = x.shape[-2:]
        rows = (torch.arange(height + 2 * pad, device=x.device) - pad).clamp_(0, height - 1)
        cols = (torch.arange(width + 2 * pad, device=x.device) - pad).clamp_(0, width - 1)
        return x[:, :, rows][:, :, :, cols]


def crop_rows(
    images: torch.Tensor, offsets: torch.Tensor, pad: int, copies: int = 1
) -> torch.Tensor:
    """Crops of the replicate-padded images at ``offsets``.

    images: (N, C, H, W); offsets: (2, copies * N) from :func:`draw_offsets`; output sample
    ``m * N + i`` is image ``i`` cropped at offset ``m * N + i``.
    returns: (copies * N, C, H, W), contiguous, in the images' dtype
    """
    n, channels, height, width = images.shape
    padded = _replicate_pad(images, pad).contiguous()  # (N, C, Hp, Wp)
    hp, wp = height + 2 * pad, width + 2 * pad
    rows = padded.view(-1).unfold(0, width, 1)  # (L - W + 1, W): row r = flat[r : r + W]
    device = images.device
    sample = torch.arange(copies * n, device=device) % n  # (copies*N,) source image
    plane = sample[:, None] * channels + torch.arange(channels, device=device)  # (cN, C)
    first = offsets[0][:, None] * wp + offsets[1][:, None]  # (cN, 1) flat offset of row 0
    start = plane[:, :, None] * (hp * wp) + first[:, :, None]  # (cN, C, 1)
    start = start + torch.arange(height, device=device) * wp  # (cN, C, H)
    return rows.index_select(0, start.view(-1)).view(copies * n, channels, height, width)


def shift_fields(
    obs: Mapping[str, torch.Tensor],
    pad: int,
    generator: torch.Generator | None = None,
    copies: int = 1,
) -> dict[str, torch.Tensor]:
    """``random_shift`` of the image fields of an observation batch, one offset per sample
    shared by its fields.

    With ``copies`` > 1 every field comes back ``copies`` times as long: copy ``m`` of
    sample ``i`` at ``m * N + i``, each copy shifted on its own (DrQ's K / M augmentations);
    the other fields are repeated likewise.
    """
    images = {k: v for k, v in obs.items() if k in IMAGE_FIELDS}
    if copies == 1 and (not images or pad <= 0):
        return dict(obs)
    if not images or pad <= 0:
        return {k: v.repeat(copies, *[1] * (v.dim() - 1)) for k, v in obs.items()}
    first = next(iter(images.values()))
    offsets = draw_offsets(copies * len(first), pad, generator, first.device)
    out = {k: v.repeat(copies, *[1] * (v.dim() - 1)) for k, v in obs.items() if k not in images}
    for name, x in images.items():
        out[name] = crop_rows(x, offsets, pad, copies)
    return out
