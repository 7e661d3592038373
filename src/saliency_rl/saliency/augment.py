"""Batched augmentations for training saliency predictors from a few frames, in torch.

The PiCANet training recipe (Liu, Han, Yang, CVPR 2018; also ViSaRL's predictor) uses
horizontal and vertical flips and colour jitter; we add small random shifts, rotations
and zooms, which from 10 frames generalise markedly better to new poses (see the field
docs of ``AugmentConfig``). Geometric changes move the frame and its map together;
colour jitter changes the frame only. Every sample of a batch draws its own
flips and jitter factors from the given ``torch.Generator``, so augmentation is
reproducible from a seed. No torchvision: hue is shifted through HSV here.

Background replacement (ours, for robustness to visual distractors; issue 28) paints new
content over what the dataset's ``background`` field says is sky or floor (MuJoCo's
segmentation render, stored by ``collect``): smooth colour noise at a random scale, the
same with drifting-disk-like blobs, or the old background recoloured. It never touches a
pixel of the agent or one the click map marks as salient (map >= 0.5), and it runs before
the geometric changes so the new background moves with the frame.

Jitter follows torchvision's ``ColorJitter`` definitions (brightness, contrast and
saturation factors drawn from [1 - s, 1 + s]; hue shifted by [-h, h] turns of the colour
wheel), applied in a fixed order (brightness, contrast, saturation, hue) where torchvision
draws a random order.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    """What ``augment`` does to a training batch."""

    hflip: float = 0.5
    """Probability of a horizontal flip (frame and map together)."""
    vflip: float = 0.5
    """Probability of a vertical flip (frame and map together)."""
    brightness: float = 0.4
    """Brightness factor drawn from [1 - b, 1 + b] (PiCANet recipe: 0.4)."""
    contrast: float = 0.4
    """Contrast factor drawn from [1 - c, 1 + c] (0.4)."""
    saturation: float = 0.4
    """Saturation factor drawn from [1 - s, 1 + s] (0.4)."""
    hue: float = 0.2
    """Hue shift drawn from [-h, h] turns of the colour wheel, h <= 0.5 (0.2)."""
    shift: int = 4
    """Largest random translation in pixels, frame and map together (0: none). Not in the
    paper recipe; as DrQ's random shift (Kostrikov et al. 2020: 4 px at 84x84). From 10
    frames it raised held-out max F-beta by 0.02-0.06 on the tasks we tried."""
    degrees: float = 30.0
    """Largest random rotation in degrees, frame and map together (0: none). Not in the
    paper recipe: with ``scale`` it raised held-out max F-beta from 10 frames by 0.02
    (cartpole) to 0.11 (walker), whose poses the 10 frames cover poorly."""
    scale: float = 0.2
    """Random zoom factor drawn from [1 - s, 1 + s], frame and map together (0: none)."""
    background: float = 0.5
    """Probability that a sample's background is replaced (``replace_background``; 0: off).
    Needs the dataset's ``background`` field (collected by default for dmc and metaworld);
    without it the fit runs without, and its report says so. Not in the paper recipe: from
    10 clean frames, a U-Net without it loses most of its F-beta under video distractors
    (benchmarks/results/predictor_distractors.md)."""


def _uniform(n: int, low: float, high: float, generator: torch.Generator, like: torch.Tensor):
    """(n, 1, 1, 1) uniform draws on like's device and dtype."""
    u = torch.rand(n, 1, 1, 1, generator=generator)
    return (low + (high - low) * u).to(device=like.device, dtype=like.dtype)


# ---------------------------------------------------------------------- flips
def random_flips(
    frames: torch.Tensor,
    maps: torch.Tensor,
    generator: torch.Generator,
    hflip: float = 0.5,
    vflip: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip each sample left-right and / or up-down, the frame and its map alike.

    frames: (N, C, H, W), any dtype
    maps: (N, H, W)
    returns: flipped copies of both
    """
    n = frames.shape[0]
    flip_h = (torch.rand(n, generator=generator) < hflip).to(frames.device)
    flip_v = (torch.rand(n, generator=generator) < vflip).to(frames.device)
    frames, maps = frames.clone(), maps.clone()
    for mask, frame_dim in ((flip_h, -1), (flip_v, -2)):
        if mask.any():
            frames[mask] = frames[mask].flip(frame_dim)
            maps[mask] = maps[mask].flip(frame_dim)
    return frames, maps


def random_shifts(
    frames: torch.Tensor, maps: torch.Tensor, generator: torch.Generator, pad: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Translate each sample by up to ``pad`` pixels each way, the frame and its map alike.

    Frames are padded by repeating their border pixels, maps with zeros (no new saliency).
    frames: (N, C, H, W); maps: (N, H, W)
    returns: shifted copies of both
    """
    if pad <= 0:
        return frames, maps
    h, w = frames.shape[-2:]
    padded = F.pad(frames, (pad, pad, pad, pad), mode="replicate")
    padded_maps = F.pad(maps, (pad, pad, pad, pad))
    offsets = torch.randint(0, 2 * pad + 1, (len(frames), 2), generator=generator).tolist()
    frames = torch.stack(
        [p[:, y : y + h, x : x + w] for p, (y, x) in zip(padded, offsets, strict=True)]
    )
    maps = torch.stack(
        [m[y : y + h, x : x + w] for m, (y, x) in zip(padded_maps, offsets, strict=True)]
    )
    return frames, maps


def random_affine(
    frames: torch.Tensor,
    maps: torch.Tensor,
    generator: torch.Generator,
    degrees: float,
    scale: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate by up to ``degrees`` and zoom by [1 - scale, 1 + scale] about the centre,
    the frame and its map alike (bilinear; frames repeat their border, maps pad with zeros).

    frames: (N, C, H, W) float; maps: (N, H, W)
    returns: transformed copies of both
    """
    if degrees <= 0 and scale <= 0:
        return frames, maps
    n = len(frames)
    angle = (torch.rand(n, generator=generator) * 2 - 1) * degrees * torch.pi / 180
    zoom = 1 + (torch.rand(n, generator=generator) * 2 - 1) * scale
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    zero = torch.zeros(n)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta.to(frames), list(frames.shape), align_corners=False)
    frames = F.grid_sample(frames, grid, padding_mode="border", align_corners=False)
    maps = F.grid_sample(maps[:, None], grid, padding_mode="zeros", align_corners=False)[:, 0]
    return frames, maps


# ---------------------------------------------------------------------- colour
def grey(images: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma, as torchvision: (N, 3, H, W) -> (N, 1, H, W)."""
    r, g, b = images.unbind(dim=1)
    return (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(1)


def rgb_to_hsv(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB in [0, 1] -> HSV in [0, 1] (hue in turns of the colour wheel)."""
    r, g, b = images.unbind(dim=1)
    value, _ = images.max(dim=1)
    chroma = value - images.min(dim=1).values
    saturation = torch.where(value > 0, chroma / value.clamp_min(1e-8), torch.zeros_like(value))
    safe = chroma.clamp_min(1e-8)
    hue = torch.where(
        value == r,
        ((g - b) / safe) % 6,
        torch.where(value == g, (b - r) / safe + 2, (r - g) / safe + 4),
    )
    hue = torch.where(chroma > 0, hue / 6, torch.zeros_like(hue))
    return torch.stack([hue, saturation, value], dim=1)


def hsv_to_rgb(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) HSV in [0, 1] -> RGB in [0, 1]."""
    hue, saturation, value = images.unbind(dim=1)
    # Each channel's piecewise-linear function of hue (the standard "k" formulation).
    channels = []
    for offset in (5.0, 3.0, 1.0):  # R, G, B
        k = (offset + hue * 6) % 6
        ramp = torch.minimum(k, 4 - k).clamp(0, 1)
        channels.append(value - value * saturation * ramp)
    return torch.stack(channels, dim=1)


def colour_jitter(
    images: torch.Tensor,
    generator: torch.Generator,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    hue: float = 0.2,
) -> torch.Tensor:
    """Random brightness, contrast, saturation and hue per sample, as torchvision's ColorJitter.

    images: (N, C, H, W) float in [0, 1], C = 3 (all four) or 1 (brightness and contrast)
    returns: (N, C, H, W) float in [0, 1]
    """
    n, c = images.shape[:2]
    x = images
    if brightness > 0:
        x = (x * _uniform(n, 1 - brightness, 1 + brightness, generator, x)).clamp(0, 1)
    if contrast > 0:
        mean = (grey(x) if c == 3 else x).mean(dim=(1, 2, 3), keepdim=True)
        factor = _uniform(n, 1 - contrast, 1 + contrast, generator, x)
        x = (mean + factor * (x - mean)).clamp(0, 1)
    if c == 3 and saturation > 0:
        factor = _uniform(n, 1 - saturation, 1 + saturation, generator, x)
        x = (grey(x) + factor * (x - grey(x))).clamp(0, 1)
    if c == 3 and hue > 0:
        hsv = rgb_to_hsv(x)
        shift = _uniform(n, -hue, hue, generator, x)[:, 0]  # (N, 1, 1)
        hsv = torch.stack([(hsv[:, 0] + shift) % 1.0, hsv[:, 1], hsv[:, 2]], dim=1)
        x = hsv_to_rgb(hsv).clamp(0, 1)
    return x


# ---------------------------------------------------------------------- background
_BLOBS = 6  # blobs drawn per sample (each shown with probability 0.6)
_NOISE_CELLS = (2, 4, 8, 16)  # scales of the colour noise: cells across the frame


def background_textures(
    frames: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A new background per sample, and which samples drew one of each kind.

    Kinds, drawn uniformly: smooth colour noise at a random scale; the same with blobs of
    random colours painted over it; the frame's own colours recoloured (per-channel gain in
    [0.3, 1.7] and offset in [-0.15, 0.15], as a colour distractor repaints sky and floor).
    frames: (N, C, H, W) float in [0, 1], C = 3 or 1
    returns: textures (N, C, H, W) float in [0, 1], kind (N,) int64 in {0, 1, 2}
    """
    n, c, h, w = frames.shape
    kind = torch.randint(3, (n,), generator=generator)
    cells = torch.tensor(_NOISE_CELLS)[torch.randint(len(_NOISE_CELLS), (n,), generator=generator)]
    noise = torch.zeros(n, 3, h, w)
    for count in _NOISE_CELLS:  # every scale is drawn, so the stream does not depend on cells
        grid = torch.rand(n, 3, count, count, generator=generator)
        smooth = F.interpolate(grid, (h, w), mode="bicubic", align_corners=False).clamp(0, 1)
        noise = torch.where((cells == count)[:, None, None, None], smooth, noise)
    centre = torch.rand(n, _BLOBS, 2, generator=generator) * torch.tensor([h, w])
    radius = (0.05 + 0.15 * torch.rand(n, _BLOBS, generator=generator)) * h
    colour = torch.rand(n, _BLOBS, 3, generator=generator)
    shown = (torch.rand(n, _BLOBS, generator=generator) < 0.6) & (kind == 1)[:, None]
    rows, cols = torch.arange(h)[None, :, None], torch.arange(w)[None, None, :]
    for i in range(_BLOBS):  # painted in order: the last blob wins where they overlap
        inside = (rows - centre[:, i, 0, None, None]) ** 2 + (
            cols - centre[:, i, 1, None, None]
        ) ** 2 < radius[:, i, None, None] ** 2
        inside &= shown[:, i, None, None]
        noise = torch.where(inside[:, None], colour[:, i, :, None, None], noise)
    gain = 0.3 + 1.4 * torch.rand(n, 3, 1, 1, generator=generator)
    offset = 0.3 * (torch.rand(n, 3, 1, 1, generator=generator) - 0.5)
    if c == 1:  # grey frames: grey noise, one gain and offset
        noise, gain, offset = grey(noise), gain.mean(1, keepdim=True), offset[:, :1]
    recoloured = (frames * gain.to(frames) + offset.to(frames)).clamp(0, 1)
    recolour = (kind == 2).to(frames.device)[:, None, None, None]
    return torch.where(recolour, recoloured, noise.to(frames)), kind


def replace_background(
    frames: torch.Tensor,
    maps: torch.Tensor,
    backgrounds: torch.Tensor,
    generator: torch.Generator,
    probability: float = 0.5,
) -> torch.Tensor:
    """Paint a new background (``background_textures``) on a ``probability`` share of samples.

    Only pixels that are background and not salient (map < 0.5) change.
    frames: (N, C, H, W) float in [0, 1]; maps: (N, H, W); backgrounds: (N, H, W) bool
    returns: frames (N, C, H, W), a new tensor
    """
    if probability <= 0:
        return frames
    chosen = torch.rand(len(frames), generator=generator) < probability
    textures, _ = background_textures(frames, generator)
    replace = backgrounds & (maps < 0.5) & chosen.to(frames.device)[:, None, None]
    return torch.where(replace[:, None], textures, frames)


# ---------------------------------------------------------------------- all of it
def augment(
    frames: torch.Tensor,
    maps: torch.Tensor,
    generator: torch.Generator,
    config: AugmentConfig = AugmentConfig(),
    backgrounds: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace backgrounds, flip and shift frames and maps together, then jitter colours.

    frames: (N, C, H, W) uint8 or float in [0, 1]
    maps: (N, H, W) float in [0, 1]
    backgrounds: (N, H, W) bool, the dataset's ``background`` masks; None: no replacement
    returns: frames (N, C, H, W) float in [0, 1], maps (N, H, W)
    """
    if frames.dtype == torch.uint8:
        frames = frames.float() / 255.0
    if backgrounds is not None:
        frames = replace_background(frames, maps, backgrounds, generator, config.background)
    frames, maps = random_flips(frames, maps, generator, config.hflip, config.vflip)
    frames, maps = random_shifts(frames, maps, generator, config.shift)
    frames, maps = random_affine(frames, maps, generator, config.degrees, config.scale)
    frames = colour_jitter(
        frames, generator, config.brightness, config.contrast, config.saturation, config.hue
    )
    return frames, maps
