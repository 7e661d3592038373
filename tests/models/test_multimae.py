"""MultiMAE: shapes, masking shares, losses on masked patches only, deterministic encoding."""

import json

import numpy as np
import pytest
import torch

from saliency_rl.checkpoint import save_checkpoint
from saliency_rl.errors import CheckpointError
from saliency_rl.models.depth_normals import normals_from_depth, standardize_depth
from saliency_rl.models.multimae import (
    ModelError,
    MultiMAE,
    MultiMAEConfig,
    multimae_config,
    multimae_tiny,
    prepare_inputs,
    rgb_from_input,
    rgb_to_input,
    sincos_pos_embed_2d,
)

SIZE = 32  # 16 tokens a modality with patch 8


def inputs(n=4, modalities=("rgb", "saliency"), seed=0):
    g = torch.Generator().manual_seed(seed)
    raw = {
        "rgb": torch.randint(0, 256, (n, 3, SIZE, SIZE), generator=g, dtype=torch.uint8),
        "saliency": torch.randint(0, 256, (n, SIZE, SIZE), generator=g, dtype=torch.uint8),
        "depth": 1.0 + torch.rand(n, SIZE, SIZE, generator=g),
    }
    return prepare_inputs(raw, modalities)


def test_visarl_size_and_named_configs():
    config = multimae_config("visarl")
    assert (config.dim, config.depth, config.num_heads) == (256, 4, 4)
    assert (config.decoder_dim, config.decoder_depth) == (256, 3)
    assert config.image_size == (64, 64) and config.patch_size == 8
    assert config.tokens_per_modality == 64
    assert config.channels == {"rgb": 3, "saliency": 1}
    assert config.losses == {"rgb": "mse", "saliency": "l1"}
    with pytest.raises(ModelError, match="unknown model size"):
        multimae_config("huge")


@pytest.mark.parametrize(
    "modalities", [("rgb",), ("rgb", "saliency"), ("rgb", "saliency", "depth", "normals")]
)
def test_forward_shapes(modalities):
    torch.manual_seed(0)
    model = multimae_tiny(modalities, image_size=SIZE)
    out = model(inputs(3, modalities))
    channels = {"rgb": 3, "saliency": 1, "depth": 1, "normals": 3}
    assert set(out.preds) == set(modalities) == set(out.losses) == set(out.masks)
    for m in modalities:
        assert out.preds[m].shape == (3, 16, 8 * 8 * channels[m])
        assert out.masks[m].shape == (3, 16) and out.masks[m].dtype == torch.bool
        assert model.unpatchify(out.preds[m], channels[m]).shape == (3, channels[m], SIZE, SIZE)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert torch.allclose(out.loss, sum(out.losses.values()))
    out.loss.backward()
    assert model.input_adapters[modalities[0]].proj.weight.grad is not None


def test_token_counts_and_masked_share():
    model = multimae_tiny(("rgb", "saliency"), image_size=SIZE)
    torch.manual_seed(1)
    mask, ids_keep, ids_restore = model.random_masks(500, [16, 16], "cpu")
    assert mask.shape == (500, 32) and ids_keep.shape == (500, 8) and ids_restore.shape == (500, 32)
    # 75% of all tokens masked, exactly, in every sample.
    assert (mask.sum(1) == 24).all()
    # ids_keep are exactly the visible tokens; ids_restore inverts the shuffle.
    visible = torch.zeros_like(mask)
    visible.scatter_(1, ids_keep, True)
    assert torch.equal(visible, ~mask)
    shuffle = torch.argsort(ids_restore, dim=1)
    assert torch.equal(shuffle[:, :8].sort(1).values, ids_keep.sort(1).values)


def test_visible_shares_follow_a_symmetric_dirichlet():
    model = multimae_tiny(("rgb", "saliency"), image_size=64)  # 64 tokens a modality, K = 32
    torch.manual_seed(2)
    mask, _, _ = model.random_masks(4000, [64, 64], "cpu")
    share = (~mask[:, :64]).sum(1).float() / 32  # RGB's share of the visible tokens
    # Dirichlet(1, 1) on two modalities: the share is uniform on [0, 1] (up to rounding).
    assert share.mean().item() == pytest.approx(0.5, abs=0.03)
    assert share.var().item() == pytest.approx(1 / 12, abs=0.01)
    counts = np.histogram(share.numpy(), bins=4, range=(0, 1))[0] / 4000
    assert np.all(np.abs(counts - 0.25) < 0.04), counts
    # Some samples show one modality only: the model learns cross-modal prediction.
    assert (share == 0).any() and (share == 1).any()


def test_single_modality_is_plain_mae():
    model = multimae_tiny(("rgb",), image_size=SIZE)
    torch.manual_seed(3)
    mask, ids_keep, _ = model.random_masks(10, [16], "cpu")
    assert (mask.sum(1) == 12).all() and ids_keep.shape == (10, 4)


def test_losses_only_on_masked_patches():
    torch.manual_seed(4)
    model = multimae_tiny(("rgb", "saliency"), image_size=SIZE)
    x = inputs(2)
    masks = model.random_masks(2, [16, 16], "cpu")
    out = model(x, masks=masks)
    for m in ("rgb", "saliency"):
        pred = out.preds[m].detach().requires_grad_(True)
        loss = model.masked_loss(m, pred, x[m], out.masks[m])
        (grad,) = torch.autograd.grad(loss, pred)
        touched = grad.abs().sum(-1) > 0  # (N, L_m)
        assert torch.equal(touched, out.masks[m])
        # Changing the target on visible patches leaves the loss as it was.
        visible_pixels = ~out.masks[m].reshape(2, 1, 4, 4)
        visible_pixels = visible_pixels.repeat_interleave(8, 2).repeat_interleave(8, 3)
        changed = x[m] + 5.0 * visible_pixels
        assert torch.equal(model.masked_loss(m, pred, changed, out.masks[m]), loss)


def test_mse_for_rgb_l1_for_saliency_and_norm_pix_target():
    model = multimae_tiny(("rgb", "saliency"), image_size=SIZE)
    x = inputs(1)
    mask = torch.ones(1, 16, dtype=torch.bool)
    zero = {m: torch.zeros(1, 16, 8 * 8 * c) for m, c in (("rgb", 3), ("saliency", 1))}
    assert model.masked_loss("rgb", zero["rgb"], x["rgb"], mask).item() == pytest.approx(
        x["rgb"].pow(2).mean().item(), rel=1e-5
    )
    assert model.masked_loss("saliency", zero["saliency"], x["saliency"], mask).item() == (
        pytest.approx(x["saliency"].abs().mean().item(), rel=1e-5)
    )
    normed = multimae_tiny(("rgb",), image_size=SIZE, norm_pix_loss=True).target("rgb", x["rgb"])
    assert torch.allclose(normed.mean(-1), torch.zeros(1, 16), atol=1e-4)
    assert torch.allclose(normed.std(-1), torch.ones(1, 16), atol=1e-3)


def test_encoder_without_masking_is_deterministic():
    torch.manual_seed(5)
    model = multimae_tiny(("rgb", "saliency"), image_size=SIZE).train()
    x = inputs(3)
    first = model.features(x)
    torch.manual_seed(123)  # another RNG state: no randomness may reach the features
    second = model.features(x)
    assert first.shape == (3, 32) and torch.equal(first, second)
    # Each frame's features do not depend on the rest of the batch.
    assert torch.allclose(model.features({k: v[1:2] for k, v in x.items()}), first[1:2], atol=1e-6)
    # RGB alone (the "pretrain only" mode) is a valid input too.
    assert model.features({"rgb": x["rgb"]}).shape == (3, 32)


def test_patchify_round_trip_and_position_embeddings():
    model = multimae_tiny(("rgb",), image_size=(16, 32))
    image = torch.randn(2, 3, 16, 32)
    patches = model.patchify(image)
    assert patches.shape == (2, 8, 192)
    assert torch.equal(patches[0, 1], image[0, :, 0:8, 8:16].permute(1, 2, 0).reshape(-1))
    assert torch.equal(model.unpatchify(patches, 3), image)
    embed = sincos_pos_embed_2d(2, 4, 16)
    assert embed.shape == (8, 16)
    assert torch.equal(embed[0, :4], torch.zeros(4))  # sin(0) for x
    assert len({tuple(row.tolist()) for row in embed}) == 8  # every position distinct


def test_rgb_normalisation_round_trip():
    rgb = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    assert torch.allclose(rgb_from_input(rgb_to_input(rgb)) * 255, rgb.float(), atol=1e-3)


def test_config_errors_are_clear():
    with pytest.raises(ModelError, match="not divisible by the patch size 8"):
        MultiMAEConfig(image_size=84)
    with pytest.raises(ModelError, match="unknown modality 'heat'"):
        MultiMAEConfig(modalities=("rgb", "heat"))
    custom = MultiMAEConfig(modalities=("rgb", "heat"), channels={"heat": 2}, losses={"heat": "l1"})
    assert custom.channels == {"rgb": 3, "heat": 2}
    assert MultiMAEConfig(image_size=84, patch_size=12).tokens_per_modality == 49
    model = multimae_tiny(("rgb",), image_size=SIZE)
    with pytest.raises(ModelError, match="do not fit this model"):
        model.features({"saliency": torch.zeros(1, 1, SIZE, SIZE)})
    with pytest.raises(ModelError, match="takes"):
        model.features({"rgb": torch.zeros(1, 3, 64, 64)})


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(6)
    model = multimae_tiny(("rgb", "saliency"), image_size=SIZE, mask_ratio=0.6)
    model.save_pretrained(tmp_path / "ckpt", extra={"note": "test"})
    loaded = MultiMAE.from_pretrained(tmp_path / "ckpt")
    assert loaded.config == model.config
    saved, restored = model.state_dict(), loaded.state_dict()
    assert saved.keys() == restored.keys()
    for name in saved:
        assert torch.equal(saved[name], restored[name]), name
    x = inputs(2)
    assert torch.equal(loaded.features(x), model.features(x))
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["model"] == "MultiMAE" and config["note"] == "test"
    assert MultiMAEConfig.from_dict(config["kwargs"]) == model.config
    with pytest.raises(CheckpointError, match="no config.json"):
        MultiMAE.from_pretrained(tmp_path)
    save_checkpoint(tmp_path / "other", {"model": "Transporter", "kwargs": {}}, {})
    with pytest.raises(CheckpointError, match="not a MultiMAE; make one with `saliency-rl pre"):
        MultiMAE.from_pretrained(tmp_path / "other")


def test_depth_standardisation_and_normals():
    depth = 2.0 + torch.rand(3, 16, 16)
    standard = standardize_depth(depth)
    assert standard.shape == (3, 1, 16, 16)
    assert standard.mean().abs().item() < 0.2
    # A wall facing the camera: normals point back at it.
    wall = normals_from_depth(torch.full((1, 8, 8), 3.0))
    assert wall.shape == (1, 3, 8, 8)
    assert torch.allclose(
        wall, torch.tensor([0.0, 0.0, -1.0])[None, :, None, None].expand(1, 3, 8, 8)
    )
    # Depth growing to the right: the surface faces right (+x) and the camera (-z), unit length.
    ramp = torch.arange(8.0)[None, None, :].expand(1, 8, 8)
    normals = normals_from_depth(ramp, fovy_degrees=None)
    expected = torch.tensor([1.0, 0.0, -1.0]) / 2**0.5
    assert torch.allclose(normals[0, :, 4, 4], expected, atol=1e-6)
    tilted = normals_from_depth(2.0 + 0.1 * ramp, fovy_degrees=45.0)
    assert torch.allclose(tilted.norm(dim=1), torch.ones(1, 8, 8), atol=1e-5)
    assert (tilted[:, 2] < 0).all() and (tilted[:, 0] > 0).all()


def test_a_tiny_model_overfits_a_tiny_dataset():
    # Four fixed frame/map pairs (a red square on grey, its map a blob on the square), fresh
    # random masks every step: memorising them must drive the masked-patch loss down by a
    # large factor (a broken loss, masking or decoder would not). Each frame has its own
    # grey, so any visible patch tells which frame it is and the masked rest is predictable.
    torch.manual_seed(0)
    grey = torch.tensor([40, 90, 140, 190], dtype=torch.uint8)
    rgb = grey[:, None, None, None].expand(4, 3, SIZE, SIZE).clone()
    saliency = torch.zeros((4, SIZE, SIZE), dtype=torch.uint8)
    for i, (x, y) in enumerate([(4, 4), (20, 6), (8, 22), (22, 22)]):
        rgb[i, :, y : y + 6, x : x + 6] = torch.tensor([220, 40, 30], dtype=torch.uint8)[
            :, None, None
        ]
        saliency[i, y - 1 : y + 7, x - 1 : x + 7] = 255
    batch = prepare_inputs({"rgb": rgb, "saliency": saliency}, ("rgb", "saliency"))
    model = multimae_tiny(("rgb", "saliency"), image_size=SIZE)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(300):
        loss = model(batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    # Seen: about 6-7x after 300 steps (the width-32 test model's capacity per 8x8 patch
    # sets the floor); a loss on the wrong patches or a broken decoder stays near 1x.
    assert last < first / 4, (first, last)
