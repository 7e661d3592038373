"""Augmentations: flips move frame and map together, colour jitter changes the frame only."""

import torch

from saliency_rl.saliency.augment import (
    AugmentConfig,
    augment,
    colour_jitter,
    hsv_to_rgb,
    random_affine,
    random_flips,
    random_shifts,
    rgb_to_hsv,
)


def marked_batch(n=16, size=8):
    """Frames whose red channel is a copy of the map, so any misalignment shows."""
    torch.manual_seed(0)
    maps = torch.rand(n, size, size)
    frames = torch.stack([maps, torch.zeros_like(maps), torch.ones_like(maps)], dim=1)
    return frames, maps


def test_flips_move_frame_and_map_alike():
    frames, maps = marked_batch()
    flipped, flipped_maps = random_flips(frames, maps, torch.Generator().manual_seed(1))
    assert torch.equal(flipped[:, 0], flipped_maps)
    changed = (flipped_maps != maps).flatten(1).any(dim=1)
    assert 0 < changed.sum() < len(maps)  # some samples flipped, some not
    for original, result in zip(maps, flipped_maps, strict=True):  # each is one of the four flips
        options = [original, original.flip(-1), original.flip(-2), original.flip(-1).flip(-2)]
        assert any(torch.equal(result, o) for o in options)


def test_augment_jitters_the_frame_only_and_is_seeded():
    frames, maps = marked_batch()
    no_flips = AugmentConfig(hflip=0.0, vflip=0.0, shift=0, degrees=0, scale=0)
    out, out_maps = augment(frames, maps, torch.Generator().manual_seed(0), no_flips)
    assert torch.equal(out_maps, maps) and not torch.allclose(out, frames)
    assert out.min() >= 0 and out.max() <= 1
    again, _ = augment(frames, maps, torch.Generator().manual_seed(0), no_flips)
    assert torch.equal(out, again)
    uint8 = (frames * 255).round().to(torch.uint8)
    out, out_maps = augment(uint8, maps, torch.Generator().manual_seed(0))
    assert out.dtype == torch.float32 and out.shape == frames.shape and out_maps.shape == maps.shape


def test_zero_jitter_is_identity_and_grey_frames_work():
    frames, _ = marked_batch()
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(colour_jitter(frames, generator, 0, 0, 0, 0), frames)
    grey = colour_jitter(frames[:, :1], generator)  # brightness and contrast only
    assert grey.shape == (16, 1, 8, 8)


def test_hsv_round_trip_and_hue_shift():
    torch.manual_seed(0)
    rgb = torch.rand(4, 3, 5, 5)
    assert torch.allclose(hsv_to_rgb(rgb_to_hsv(rgb)), rgb, atol=1e-5)
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    hsv = rgb_to_hsv(red)
    assert torch.allclose(hsv.flatten(), torch.tensor([0.0, 1.0, 1.0]))
    hsv[:, 0] = 1 / 3  # a third of the wheel: red -> green
    assert torch.allclose(hsv_to_rgb(hsv).flatten(), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)


def test_shifts_rotations_and_zooms_move_frame_and_map_alike():
    torch.manual_seed(0)
    maps = torch.zeros(8, 16, 16)
    maps[:, 5:11, 4:9] = torch.rand(8, 6, 5)  # zero near the borders: both paddings agree
    frames = torch.stack([maps, torch.zeros_like(maps), torch.ones_like(maps)], dim=1)
    generator = torch.Generator().manual_seed(0)
    shifted, shifted_maps = random_shifts(frames, maps, generator, pad=3)
    assert torch.equal(shifted[:, 0], shifted_maps) and not torch.equal(shifted_maps, maps)
    turned, turned_maps = random_affine(frames, maps, generator, degrees=30, scale=0.2)
    assert torch.allclose(turned[:, 0], turned_maps, atol=1e-6)
    assert not torch.allclose(turned_maps, maps)
    assert torch.allclose(turned[:, 2], torch.ones(8, 16, 16))  # border padding, no black


def test_background_replacement_is_seeded_and_spares_agent_and_salient_pixels():
    from saliency_rl.saliency.augment import background_textures, replace_background

    torch.manual_seed(0)
    frames = torch.rand(32, 3, 16, 16)
    maps = torch.zeros(32, 16, 16)
    maps[:, 6:9, 6:9] = 0.8  # salient, and marked background: must not change anyway
    backgrounds = torch.zeros(32, 16, 16, dtype=torch.bool)
    backgrounds[:, :10] = True  # the top rows are sky

    def run(seed: int) -> torch.Tensor:
        return replace_background(frames, maps, backgrounds, torch.Generator().manual_seed(seed))

    out = run(0)
    assert torch.equal(out, run(0)) and not torch.equal(out, run(1))
    spared = ~backgrounds | (maps >= 0.5)
    assert torch.equal(out.permute(1, 0, 2, 3)[:, spared], frames.permute(1, 0, 2, 3)[:, spared])
    changed = (out != frames).flatten(1).any(dim=1)
    assert 4 < changed.sum() < 28  # about half the samples (probability 0.5)
    assert torch.equal(replace_background(frames, maps, backgrounds, torch.Generator(), 0), frames)
    textures, kind = background_textures(frames, torch.Generator().manual_seed(0))
    assert textures.shape == frames.shape and set(kind.tolist()) == {0, 1, 2}
    assert textures.min() >= 0 and textures.max() <= 1
    grey, _ = background_textures(frames[:, :1], torch.Generator().manual_seed(0))
    assert grey.shape == (32, 1, 16, 16)
    # Through augment: without masks, nothing of this draws from the generator.
    config = AugmentConfig(hflip=0, vflip=0, shift=0, degrees=0, scale=0, brightness=0,
                           contrast=0, saturation=0, hue=0, background=1.0 - 1e-9)  # fmt: skip
    out, out_maps = augment(frames, maps, torch.Generator().manual_seed(0), config, backgrounds)
    assert torch.equal(out_maps, maps) and (out != frames).flatten(1).any(dim=1).all()
