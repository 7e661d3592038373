"""MultiMAE: a multi-modal masked autoencoder (Bachmann et al., ECCV 2022), small and on plain PyTorch.

ViSaRL (Liang et al.) pretrains it on (RGB, saliency) pairs and trains policies on the frozen
encoder's features. The file reads in the order of the data flow:

1. configuration, modalities and named sizes;
2. building blocks: 2-D sin-cos position embeddings, attention, MLP, pre-norm block;
3. input adapters: one patch embedding per modality, plus fixed position embeddings;
4. output adapters: per modality, its full token grid cross-attends to the encoded tokens,
   then a few self-attention layers and a linear head to pixels;
5. the model: masking across modalities (symmetric Dirichlet shares, argsort of noise);
   the encoder (a pre-norm ViT over the visible tokens and one learned global token);
   forward; losses on masked patches only; save / load (``saliency_rl.checkpoint``'s format);
6. inputs: uint8 frames, saliency and depth -> model inputs, and back to pictures.

Tensor shapes: N batch, C channels, H x W pixels, p patch size, L_m = (H/p)(W/p) tokens of
one modality, L = sum of L_m over modalities, K visible (encoded) tokens, D encoder width,
Dd decoder width.

Faithful to the reference implementation (github.com/EPFL-VILAB/MultiMAE) where it matters:
no modality embedding in the input adapters (each modality has its own patch projection);
the global token is appended after masking and never masked; the encoder has no final norm;
the decoder's cross-attention has no residual connection and is followed by a residual MLP;
queries are the decoded modality's tokens (encoded where visible, the mask token elsewhere)
plus position and modality embeddings; losses are averaged per sample over masked patches.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from saliency_rl.checkpoint import (
    CONFIG_FILE,
    is_checkpoint,
    load_module_checkpoint,
    read_module_config,
    save_checkpoint,
)
from saliency_rl.errors import SaliencyRLError
from saliency_rl.models.depth_normals import normals_from_depth, standardize_depth

MODEL_NAME = "MultiMAE"  # config.json's "model" (saliency_rl.checkpoint's format)
HOW_TO_MAKE = "saliency-rl pretrain DATASET --out DIR"


class ModelError(SaliencyRLError, ValueError):
    """A model configuration, input or checkpoint is not valid."""


READOUTS = ("mean", "global", "gridR")


def readout_grid(readout: str) -> int:
    """R of a ``gridR`` readout, 0 for ``mean`` and ``global``; ModelError for another."""
    if readout in ("mean", "global"):
        return 0
    if readout.startswith("grid") and readout[4:].isdigit() and int(readout[4:]) >= 1:
        return int(readout[4:])
    raise ModelError(f"unknown readout {readout!r}; valid: mean, global, gridR (e.g. grid2)")


# ============================================================== 1. configuration
@dataclass(frozen=True)
class Modality:
    """What the model needs to know about a modality."""

    channels: int
    """Channels of its image, e.g. 3 for RGB."""
    loss: str
    """Reconstruction loss: "mse" or "l1"."""
    field: str
    """Dataset field it is read from (normals are derived from depth)."""


MODALITIES: dict[str, Modality] = {
    # MultiMAE: MSE for RGB, L1 for depth; ViSaRL: L1 for saliency.
    "rgb": Modality(channels=3, loss="mse", field="rgb"),
    "saliency": Modality(channels=1, loss="l1", field="saliency"),
    "depth": Modality(channels=1, loss="l1", field="depth"),
    "normals": Modality(channels=3, loss="l1", field="depth"),
}
LOSSES = ("mse", "l1")


@dataclass
class MultiMAEConfig:
    """Everything that defines a MultiMAE; stored in the checkpoint's config.json."""

    modalities: tuple[str, ...] = ("rgb", "saliency")
    """Input and output modalities in token order; ("rgb",) is a plain MAE."""
    channels: dict[str, int] = field(default_factory=dict)
    """Channels per modality; those left out take MODALITIES' value (rgb 3, saliency 1,
    depth 1, normals 3). A modality not in MODALITIES must be given here."""
    losses: dict[str, str] = field(default_factory=dict)
    """Loss per modality, "mse" or "l1"; those left out take MODALITIES' value."""
    loss_weights: dict[str, float] = field(default_factory=dict)
    """Weight of each modality's loss in the sum (1.0 where left out, as MultiMAE)."""
    image_size: tuple[int, int] = (64, 64)
    """(H, W) of every modality's image; each must be divisible by ``patch_size``."""
    patch_size: int = 8
    """Square patch side in pixels: 8 on 64x64 frames gives 64 tokens a modality."""
    dim: int = 256
    """Encoder width D (ViSaRL: 256)."""
    depth: int = 4
    """Encoder blocks (ViSaRL: 4)."""
    num_heads: int = 4
    """Encoder attention heads (ViSaRL: 4)."""
    mlp_ratio: float = 4.0
    """Hidden width of every MLP as a multiple of its block's width."""
    decoder_dim: int = 256
    """Decoder width Dd (MultiMAE: 256)."""
    decoder_depth: int = 3
    """Self-attention blocks after each output adapter's cross-attention."""
    decoder_heads: int = 8
    """Decoder attention heads (MultiMAE: 8)."""
    mask_ratio: float = 0.75
    """Share of all tokens masked; the rest are encoded."""
    dirichlet_alpha: float = 1.0
    """Concentration of the symmetric Dirichlet that splits the visible tokens among the
    modalities (MultiMAE: 1.0)."""
    norm_pix_loss: bool = False
    """Reconstruct per-patch normalised RGB (MAE's normalised pixels) instead of RGB."""

    def __post_init__(self) -> None:
        self.modalities = tuple(self.modalities)
        size = self.image_size
        self.image_size = (int(size), int(size)) if isinstance(size, int) else tuple(size)
        if not self.modalities:
            raise ModelError("a MultiMAE needs at least one modality")
        if len(set(self.modalities)) != len(self.modalities):
            raise ModelError(f"modalities repeat: {', '.join(self.modalities)}")
        for name in self.modalities:
            known = MODALITIES.get(name)
            if known is None and name not in self.channels:
                raise ModelError(
                    f"unknown modality {name!r}: valid modalities are {', '.join(MODALITIES)}, "
                    "or give its channels and loss in the config"
                )
            self.channels.setdefault(name, known.channels if known else 0)
            self.losses.setdefault(name, known.loss if known else "mse")
            self.loss_weights.setdefault(name, 1.0)
            if self.losses[name] not in LOSSES:
                raise ModelError(
                    f"loss {self.losses[name]!r} of {name} is not valid; valid: {', '.join(LOSSES)}"
                )
        self.channels = {m: int(self.channels[m]) for m in self.modalities}
        self.losses = {m: self.losses[m] for m in self.modalities}
        self.loss_weights = {m: float(self.loss_weights[m]) for m in self.modalities}
        height, width = self.image_size
        if height % self.patch_size or width % self.patch_size:
            raise ModelError(
                f"image size {height}x{width} is not divisible by the patch size "
                f"{self.patch_size}: collect at a size that is (64 with patch 8), or choose a "
                f"patch size dividing both (e.g. 12 or 7 for 84x84)"
            )
        for what, width_, heads in (
            ("encoder", self.dim, self.num_heads),
            ("decoder", self.decoder_dim, self.decoder_heads),
        ):
            if width_ % heads:
                raise ModelError(f"{what} width {width_} is not divisible by its {heads} heads")
            if width_ % 4:
                raise ModelError(
                    f"{what} width {width_} must be divisible by 4 (2-D sin-cos embeddings)"
                )
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ModelError(f"mask_ratio must be in [0, 1), got {self.mask_ratio}")
        if self.dirichlet_alpha <= 0:
            raise ModelError(f"dirichlet_alpha must be > 0, got {self.dirichlet_alpha}")

    @property
    def grid(self) -> tuple[int, int]:
        """Patches along (H, W)."""
        return self.image_size[0] // self.patch_size, self.image_size[1] // self.patch_size

    @property
    def tokens_per_modality(self) -> int:
        """L_m = (H/p)(W/p)."""
        return self.grid[0] * self.grid[1]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["modalities"] = list(self.modalities)
        out["image_size"] = list(self.image_size)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> MultiMAEConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ModelError(f"unknown MultiMAE config entries: {', '.join(unknown)}")
        return cls(**{k: v for k, v in values.items()})


MODEL_SIZES: dict[str, dict[str, Any]] = {
    # ViSaRL's encoder (the authors' `pretrain_multimae_small`): depth 4, width 256, 4 heads;
    # MultiMAE's decoder width 256 and 8 heads, here with 3 self-attention layers.
    "visarl": dict(
        dim=256, depth=4, num_heads=4, decoder_dim=256, decoder_depth=3, decoder_heads=8
    ),
    # For tests and smoke runs only.
    "tiny": dict(dim=32, depth=1, num_heads=2, decoder_dim=32, decoder_depth=1, decoder_heads=2),
}


def multimae_config(
    size: str = "visarl", modalities: Sequence[str] = ("rgb", "saliency"), **overrides: Any
) -> MultiMAEConfig:
    """The config of a named size (``MODEL_SIZES``) for these modalities, with overrides."""
    if size not in MODEL_SIZES:
        raise ModelError(f"unknown model size {size!r}; valid: {', '.join(MODEL_SIZES)}")
    return MultiMAEConfig(modalities=tuple(modalities), **{**MODEL_SIZES[size], **overrides})


def multimae_visarl(modalities: Sequence[str] = ("rgb", "saliency"), **overrides: Any) -> MultiMAE:
    """ViSaRL's MultiMAE: encoder depth 4, width 256, 4 heads; 64x64 frames, patch 8."""
    return MultiMAE(multimae_config("visarl", modalities, **overrides))


def multimae_tiny(modalities: Sequence[str] = ("rgb", "saliency"), **overrides: Any) -> MultiMAE:
    """A tiny MultiMAE for tests: depth 1, width 32."""
    return MultiMAE(multimae_config("tiny", modalities, **overrides))


# ============================================================== 2. building blocks
def sincos_pos_embed_2d(grid_h: int, grid_w: int, dim: int) -> Tensor:
    """Fixed 2-D sin-cos position embeddings (MoCo v3, used by MAE and MultiMAE).

    Returns:
        (grid_h * grid_w, dim), row-major over the grid: a quarter of the channels each for
        sin(x), cos(x), sin(y), cos(y) at frequencies 1 / 10000^(k / (dim/4)).
    """
    quarter = dim // 4
    omega = 1.0 / (10000.0 ** (torch.arange(quarter, dtype=torch.float64) / quarter))  # (D/4,)
    ys, xs = torch.meshgrid(
        torch.arange(grid_h, dtype=torch.float64),
        torch.arange(grid_w, dtype=torch.float64),
        indexing="ij",
    )
    out_x = xs.reshape(-1, 1) * omega[None]  # (h*w, D/4)
    out_y = ys.reshape(-1, 1) * omega[None]
    embed = torch.cat([out_x.sin(), out_x.cos(), out_y.sin(), out_y.cos()], dim=1)  # (h*w, D)
    return embed.float()


class Attention(nn.Module):
    """Multi-head attention; self-attention when ``context`` is None, else cross-attention."""

    def __init__(self, dim: int, num_heads: int, cross: bool = False) -> None:
        super().__init__()
        self.num_heads = num_heads
        if cross:
            self.q = nn.Linear(dim, dim)
            self.kv = nn.Linear(dim, 2 * dim)
        else:
            self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        """x: (N, T, dim), context: (N, S, dim) or None -> (N, T, dim)."""
        n, t, dim = x.shape
        h = self.num_heads
        if context is None:
            q, k, v = self.qkv(x).reshape(n, t, 3, h, dim // h).permute(2, 0, 3, 1, 4)
        else:
            s = context.shape[1]
            q = self.q(x).reshape(n, t, h, dim // h).transpose(1, 2)  # (N, h, T, dim/h)
            k, v = self.kv(context).reshape(n, s, 2, h, dim // h).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v)  # (N, h, T, dim/h)
        return self.proj(x.transpose(1, 2).reshape(n, t, dim))


class Mlp(nn.Sequential):
    """Linear -> GELU -> Linear."""

    def __init__(self, dim: int, ratio: float) -> None:
        hidden = int(dim * ratio)
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, mlp_ratio)

    def forward(self, x: Tensor) -> Tensor:
        """(N, T, dim) -> (N, T, dim)."""
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


# ============================================================== 3. input adapters
class PatchInputAdapter(nn.Module):
    """One modality's image -> tokens: a p x p patch embedding plus fixed position embeddings."""

    def __init__(self, channels: int, patch_size: int, grid: tuple[int, int], dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, dim, kernel_size=patch_size, stride=patch_size)
        self.register_buffer("pos_embed", sincos_pos_embed_2d(*grid, dim), persistent=False)

    def forward(self, image: Tensor) -> Tensor:
        """image: (N, C, H, W) -> tokens (N, L_m, D), patches in row-major order."""
        tokens = self.proj(image).flatten(2).transpose(1, 2)  # (N, L_m, D)
        return tokens + self.pos_embed  # (N, L_m, D)


# ============================================================== 4. output adapters
class SpatialOutputAdapter(nn.Module):
    """Decoder of one modality: its token grid cross-attends to the encoded tokens.

    Queries are the modality's L_m tokens in grid order: the projected encoded token where
    the patch was visible, the mask token where it was masked, plus position and modality
    embeddings. The context is every visible encoded token (with its own position and
    modality embeddings) and the global token. Then an MLP, ``depth`` self-attention blocks,
    and a linear head to the patch's pixels.
    """

    def __init__(
        self,
        modality: str,
        context_modalities: Sequence[str],
        channels: int,
        patch_size: int,
        grid: tuple[int, int],
        encoder_dim: int,
        dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float,
    ) -> None:
        super().__init__()
        self.modality = modality
        self.proj_context = nn.Linear(encoder_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.modality_embed = nn.ParameterDict(
            {m: nn.Parameter(torch.zeros(1, 1, dim)) for m in context_modalities}
        )
        self.register_buffer("pos_embed", sincos_pos_embed_2d(*grid, dim), persistent=False)
        self.query_norm = nn.LayerNorm(dim, eps=1e-6)
        self.context_norm = nn.LayerNorm(dim, eps=1e-6)
        self.cross_attn = Attention(dim, num_heads, cross=True)
        self.out_norm = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, mlp_ratio)
        self.blocks = nn.Sequential(*[Block(dim, num_heads, mlp_ratio) for _ in range(depth)])
        self.head = nn.Linear(dim, patch_size * patch_size * channels)

    def forward(
        self,
        encoded: Tensor,
        ids_keep: Tensor,
        ids_restore: Tensor,
        context_modalities: Sequence[str],
    ) -> Tensor:
        """Predict this modality's patches.

        Args:
            encoded: (N, K + 1, D) encoder output, the global token last.
            ids_keep: (N, K) positions in the full token sequence of the encoded tokens.
            ids_restore: (N, L) inverse of the shuffle that put visible tokens first.
            context_modalities: the modalities of the full sequence, in order (L_m tokens each).

        Returns:
            (N, L_m, p*p*C) predicted patches, grid order.
        """
        n, k = ids_keep.shape
        total = ids_restore.shape[1]
        x = self.proj_context(encoded)  # (N, K+1, Dd)
        visible, global_token = x[:, :-1], x[:, -1:]  # (N, K, Dd), (N, 1, Dd)
        mask_tokens = self.mask_token.expand(n, total - k, -1)  # (N, L-K, Dd)
        full = torch.cat([visible, mask_tokens], dim=1)  # (N, L, Dd), visible first
        full = torch.gather(full, 1, _expand(ids_restore, full.shape[-1]))  # (N, L, Dd) in order
        embeds = torch.cat(
            [self.modality_embed[m] + self.pos_embed for m in context_modalities], dim=1
        )  # (1, L, Dd)
        full = full + embeds
        start = list(context_modalities).index(self.modality) * self.pos_embed.shape[0]
        queries = full[:, start : start + self.pos_embed.shape[0]]  # (N, L_m, Dd)
        context = torch.gather(full, 1, _expand(ids_keep, full.shape[-1]))  # (N, K, Dd)
        context = torch.cat([context, global_token], dim=1)  # (N, K+1, Dd)
        # MultiMAE: no residual around the cross-attention, a residual MLP after it.
        x = self.cross_attn(self.query_norm(queries), self.context_norm(context))  # (N, L_m, Dd)
        x = x + self.mlp(self.out_norm(x))
        x = self.blocks(x)  # (N, L_m, Dd)
        return self.head(x)  # (N, L_m, p*p*C)


def _expand(ids: Tensor, dim: int) -> Tensor:
    """(N, T) indices -> (N, T, dim) for gathering tokens."""
    return ids.unsqueeze(-1).expand(-1, -1, dim)


# ============================================================== 5. the model
@dataclass
class MultiMAEOutput:
    """What a masked forward pass returns."""

    loss: Tensor
    """Scalar: the weighted sum of the modalities' losses."""
    losses: dict[str, Tensor]
    """Scalar loss of each modality, on its masked patches only."""
    preds: dict[str, Tensor]
    """(N, L_m, p*p*C) predicted patches of each modality (see ``unpatchify``)."""
    masks: dict[str, Tensor]
    """(N, L_m) bool of each modality, True where the patch was masked."""


class MultiMAE(nn.Module):
    """MultiMAE with one input and one output adapter per modality.

    Inputs are dicts of float images (N, C, H, W) made by ``prepare_inputs``.
    """

    def __init__(self, config: MultiMAEConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.input_adapters = nn.ModuleDict(
            {m: PatchInputAdapter(c.channels[m], c.patch_size, c.grid, c.dim) for m in c.modalities}
        )
        self.global_token = nn.Parameter(torch.zeros(1, 1, c.dim))
        self.encoder = nn.Sequential(
            *[Block(c.dim, c.num_heads, c.mlp_ratio) for _ in range(c.depth)]
        )
        self.output_adapters = nn.ModuleDict(
            {
                m: SpatialOutputAdapter(
                    m, c.modalities, c.channels[m], c.patch_size, c.grid, c.dim,
                    c.decoder_dim, c.decoder_depth, c.decoder_heads, c.mlp_ratio,
                )
                for m in c.modalities
            }
        )  # fmt: skip
        self._init_weights()

    def _init_weights(self) -> None:
        # As MultiMAE (after MAE): xavier-uniform linears with Q, K, V (and K, V) treated as
        # separate matrices, patch projections like linears, small normal tokens.
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear):
                fan_out = module.weight.shape[0]
                if name.endswith(".qkv"):
                    fan_out //= 3
                elif name.endswith(".kv"):
                    fan_out //= 2
                bound = math.sqrt(6.0 / (fan_out + module.weight.shape[1]))
                nn.init.uniform_(module.weight, -bound, bound)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Conv2d):
                nn.init.xavier_uniform_(module.weight.view(module.weight.shape[0], -1))
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.trunc_normal_(self.global_token, std=0.02)
        for adapter in self.output_adapters.values():
            for embed in adapter.modality_embed.values():
                nn.init.trunc_normal_(embed, std=0.02)

    def no_weight_decay(self) -> set[str]:
        """Parameter names AdamW should not decay: tokens, embeddings, biases and norms."""
        return {
            name
            for name, param in self.named_parameters()
            if param.ndim <= 1 or "token" in name or "modality_embed" in name
        }

    # ---------------------------------------------------------- masking
    def num_visible(self, total_tokens: int) -> int:
        """K: tokens left visible out of ``total_tokens`` (at least 1)."""
        return max(1, round(total_tokens * (1.0 - self.config.mask_ratio)))

    def random_masks(
        self, batch: int, tokens_per_modality: Sequence[int], device: torch.device | str
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Draw which tokens each sample encodes.

        Per sample, the shares of the K visible tokens among the M modalities are drawn from
        a symmetric Dirichlet(alpha) (MultiMAE, Sec. 3.2), and within each modality the
        visible tokens are a uniformly random subset. Rounding is absorbed at random so
        exactly K = (1 - mask_ratio) L tokens stay visible. Uses torch's global RNG.

        Returns:
            mask (N, L) bool, True = masked; ids_keep (N, K); ids_restore (N, L).
        """
        total = sum(tokens_per_modality)
        k = self.num_visible(total)
        alphas = torch.full((len(tokens_per_modality),), float(self.config.dirichlet_alpha))
        shares = torch.distributions.Dirichlet(alphas).sample((batch,)).to(device)  # (N, M)
        counts = (shares * k).round().long()  # (N, M) visible tokens wanted per modality
        visible = []
        for i, length in enumerate(tokens_per_modality):
            rank = torch.argsort(torch.rand(batch, length, device=device), dim=1)  # (N, L_m)
            visible.append(rank < counts[:, i : i + 1])  # a random subset of counts[:, i]
        wanted = torch.cat(visible, dim=1)  # (N, L) bool
        # Visible tokens first, each group in random order; the first K are encoded.
        noise = torch.rand(batch, total, device=device)  # (N, L)
        ids_shuffle = torch.argsort((~wanted).float() + noise, dim=1)  # (N, L)
        ids_restore = torch.argsort(ids_shuffle, dim=1)  # (N, L)
        ids_keep = ids_shuffle[:, :k]  # (N, K)
        mask = torch.ones(batch, total, dtype=torch.bool, device=device)
        mask[:, :k] = False
        mask = torch.gather(mask, 1, ids_restore)  # (N, L) in token order
        return mask, ids_keep, ids_restore

    # ---------------------------------------------------------- encoder
    def tokenize(self, inputs: Mapping[str, Tensor]) -> tuple[Tensor, list[str]]:
        """Input adapters of the given modalities, in config order.

        Args:
            inputs: modality -> (N, C, H, W) float image; any non-empty subset of the
                config's modalities.

        Returns:
            tokens (N, L, D) and the modalities they come from, in order.
        """
        names = [m for m in self.config.modalities if m in inputs]
        unknown = sorted(set(inputs) - set(self.config.modalities))
        if unknown or not names:
            raise ModelError(
                f"inputs {sorted(inputs)} do not fit this model: it encodes "
                f"{', '.join(self.config.modalities)}"
            )
        for m in names:
            expected = (self.config.channels[m], *self.config.image_size)
            if tuple(inputs[m].shape[1:]) != expected:
                raise ModelError(
                    f"{m} input has shape {tuple(inputs[m].shape)}; the model takes (N, "
                    f"{', '.join(map(str, expected))})"
                )
        tokens = torch.cat([self.input_adapters[m](inputs[m]) for m in names], dim=1)
        return tokens, names  # (N, L, D)

    def encode(self, tokens: Tensor, ids_keep: Tensor | None = None) -> Tensor:
        """Encode the kept tokens and the global token.

        Args:
            tokens: (N, L, D) from ``tokenize``.
            ids_keep: (N, K) tokens to keep; all of them when None (no masking).

        Returns:
            (N, K + 1, D): encoded tokens, the global token last.
        """
        if ids_keep is not None:
            tokens = torch.gather(tokens, 1, _expand(ids_keep, tokens.shape[-1]))  # (N, K, D)
        global_token = self.global_token.expand(tokens.shape[0], -1, -1)  # (N, 1, D)
        x = torch.cat([tokens, global_token], dim=1)  # (N, K+1, D)
        return self.encoder(x)  # (N, K+1, D)

    @torch.no_grad()
    def features(self, inputs: Mapping[str, Tensor], readout: str = "mean") -> Tensor:
        """Policy features, deterministic (no masking), read out of the encoded tokens.

        Args:
            inputs: modality -> (N, C, H, W) float image, any subset of the modalities.
            readout: ``mean`` (ViSaRL's: the mean of the patch tokens), ``global`` (the
                global token), or ``gridR`` (each modality's patch tokens averaged over an
                R x R grid of the frame, concatenated: features that keep where things are).

        Returns:
            (N, D), or (N, M * R * R * D) for ``gridR`` over M modalities.
        """
        tokens, names = self.tokenize(inputs)  # (N, L, D)
        encoded = self.encode(tokens)  # (N, L+1, D)
        if readout == "mean":
            return encoded[:, :-1].mean(dim=1)  # (N, D): patch tokens, not the global one
        if readout == "global":
            return encoded[:, -1]
        cells = readout_grid(readout)
        gh, gw = (s // self.config.patch_size for s in self.config.image_size)
        patches = encoded[:, :-1].unflatten(1, (len(names), gh, gw))  # (N, M, gh, gw, D)
        grid = patches.permute(0, 1, 4, 2, 3).flatten(1, 2)  # (N, M*D, gh, gw)
        return F.adaptive_avg_pool2d(grid, cells).flatten(1)  # (N, M*D*R*R)

    # ---------------------------------------------------------- forward
    def forward(
        self, inputs: Mapping[str, Tensor], masks: tuple[Tensor, Tensor, Tensor] | None = None
    ) -> MultiMAEOutput:
        """Mask, encode, decode every modality, and compute the losses.

        Args:
            inputs: every modality of the config -> (N, C, H, W) float image.
            masks: (mask, ids_keep, ids_restore) as from ``random_masks``; drawn when None.
        """
        missing = [m for m in self.config.modalities if m not in inputs]
        if missing:
            raise ModelError(f"pretraining needs every modality; missing: {', '.join(missing)}")
        tokens, names = self.tokenize(inputs)  # (N, L, D)
        n = tokens.shape[0]
        lengths = [self.config.tokens_per_modality] * len(names)
        mask, ids_keep, ids_restore = masks or self.random_masks(n, lengths, tokens.device)
        encoded = self.encode(tokens, ids_keep)  # (N, K+1, D)
        preds = {
            m: self.output_adapters[m](encoded, ids_keep, ids_restore, names) for m in names
        }  # m -> (N, L_m, p*p*C)
        split = dict(zip(names, torch.split(mask, lengths, dim=1), strict=True))  # m -> (N, L_m)
        losses = {m: self.masked_loss(m, preds[m], inputs[m], split[m]) for m in names}
        loss = sum(self.config.loss_weights[m] * losses[m] for m in names)
        return MultiMAEOutput(loss=loss, losses=losses, preds=preds, masks=split)

    # ---------------------------------------------------------- losses
    def patchify(self, image: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, L_m, p*p*C), as MAE (patch rows, then columns, then channels)."""
        n, c, height, width = image.shape
        p = self.config.patch_size
        x = image.reshape(n, c, height // p, p, width // p, p)
        x = torch.einsum("nchpwq->nhwpqc", x)
        return x.reshape(n, (height // p) * (width // p), p * p * c)

    def unpatchify(self, patches: Tensor, channels: int) -> Tensor:
        """(N, L_m, p*p*C) -> (N, C, H, W)."""
        n = patches.shape[0]
        p = self.config.patch_size
        gh, gw = self.config.grid
        x = patches.reshape(n, gh, gw, p, p, channels)
        x = torch.einsum("nhwpqc->nchpwq", x)
        return x.reshape(n, channels, gh * p, gw * p)

    def target(self, modality: str, image: Tensor) -> Tensor:
        """The reconstruction target of a modality's input image: (N, L_m, p*p*C)."""
        target = self.patchify(image)
        if modality == "rgb" and self.config.norm_pix_loss:
            # MAE's normalised pixels: each patch standardised by its own mean and variance.
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1e-6).sqrt()
        return target

    def masked_loss(self, modality: str, pred: Tensor, image: Tensor, mask: Tensor) -> Tensor:
        """Loss on masked patches only: per sample the mean over its masked patches, then
        the mean over samples with at least one masked patch (MultiMAE's MaskedMSELoss and
        MaskedL1Loss).

        Args:
            pred: (N, L_m, p*p*C); image: (N, C, H, W) the input; mask: (N, L_m) bool.
        """
        target = self.target(modality, image)  # (N, L_m, p*p*C)
        if self.config.losses[modality] == "mse":
            error = (pred - target).pow(2).mean(dim=-1)  # (N, L_m)
        else:
            error = (pred - target).abs().mean(dim=-1)  # (N, L_m)
        weight = mask.float()  # (N, L_m)
        count = weight.sum(dim=1)  # (N,)
        per_sample = (error * weight).sum(dim=1) / count.clamp_min(1.0)  # (N,)
        valid = count > 0
        if not bool(valid.any()):
            return error.sum() * 0.0  # nothing masked: zero, still on the graph
        return per_sample[valid].mean()

    # ---------------------------------------------------------- save / load
    def save_pretrained(
        self,
        directory: str | Path,
        extra: Mapping[str, Any] | None = None,
        training_state: Mapping[str, Any] | None = None,
    ) -> Path:
        """Write a checkpoint (``saliency_rl.checkpoint.save_checkpoint``) at ``directory``.

        config.json is ``{"model": "MultiMAE", "kwargs": MultiMAEConfig, **extra}``: ``extra``
        says how it was trained; ``training_state`` (optimizer, step, RNG) is for a resume.
        """
        extra = dict(extra or {})
        if {"model", "kwargs"} & set(extra):
            raise ModelError(
                "a MultiMAE checkpoint's extra entries cannot be named model or kwargs"
            )
        config = {"model": MODEL_NAME, "kwargs": self.config.to_dict(), **extra}
        return save_checkpoint(directory, config, self.state_dict(), training_state)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> MultiMAE:
        """Load a MultiMAE checkpoint (also one of the first format, which checkpoint.py
        reads); CheckpointError naming what is wrong."""
        model, _ = load_module_checkpoint(directory, MODEL_NAME, _build, HOW_TO_MAKE, device)
        return model  # type: ignore[return-value]


def _build(**kwargs: Any) -> MultiMAE:
    return MultiMAE(MultiMAEConfig.from_dict(kwargs))


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory itself, or the newest ``checkpoints/step_N`` of a pretraining
    run directory (the OUT of ``saliency-rl pretrain``)."""
    path = Path(path)
    if (path / CONFIG_FILE).is_file():
        return path  # loading it names what else is missing
    found = (path / "checkpoints").glob("step_*") if path.is_dir() else []
    steps = sorted(
        (s for s in found if s.name[5:].isdigit() and is_checkpoint(s)),
        key=lambda s: int(s.name[5:]),
    )
    if not steps:
        raise ModelError(
            f"{path} holds no MultiMAE checkpoint: give a checkpoint directory or the OUT "
            "directory of `saliency-rl pretrain`"
        )
    return steps[-1]


def read_checkpoint_config(directory: str | Path) -> dict[str, Any]:
    """The config.json of a MultiMAE checkpoint: ``kwargs`` is its MultiMAEConfig;
    CheckpointError if it is not one."""
    return read_module_config(directory, MODEL_NAME, HOW_TO_MAKE)


# ============================================================== 6. inputs
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # MultiMAE normalises RGB with ImageNet statistics
IMAGENET_STD = (0.229, 0.224, 0.225)


def _rgb_stats(channels: int, device: torch.device) -> tuple[Tensor, Tensor]:
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    if channels == 1:  # grey frames (Atari): the channel means
        mean, std = mean.mean(0, keepdim=True), std.mean(0, keepdim=True)
    return mean.to(device)[None, :, None, None], std.to(device)[None, :, None, None]


def rgb_to_input(rgb: Tensor) -> Tensor:
    """uint8 frames (N, C, H, W) -> float, scaled to [0, 1] then ImageNet-normalised."""
    mean, std = _rgb_stats(rgb.shape[1], rgb.device)
    return (rgb.float() / 255.0 - mean) / std


def rgb_from_input(x: Tensor) -> Tensor:
    """Inverse of ``rgb_to_input``, clipped to [0, 1]: (N, C, H, W)."""
    mean, std = _rgb_stats(x.shape[1], x.device)
    return (x * std + mean).clamp(0.0, 1.0)


def saliency_to_input(saliency: Tensor) -> Tensor:
    """Saliency maps (N, H, W), uint8 [0, 255] or float [0, 1] -> float (N, 1, H, W) in [0, 1]."""
    if saliency.dtype == torch.uint8:
        saliency = saliency.float() / 255.0
    return saliency.float()[:, None]


def prepare_inputs(
    raw: Mapping[str, Tensor], modalities: Sequence[str], fovy_degrees: float | None = 45.0
) -> dict[str, Tensor]:
    """Dataset fields -> model inputs.

    Args:
        raw: ``rgb`` uint8 (N, C, H, W); ``saliency`` uint8 or float (N, H, W); ``depth``
            (N, H, W) (for the depth and normals modalities); other modalities as float
            (N, C, H, W), passed through.
        modalities: which inputs to make.
        fovy_degrees: the camera's vertical field of view for normals (MuJoCo's default 45).

    Returns:
        modality -> float (N, C, H, W).
    """
    out = {}
    for m in modalities:
        source = MODALITIES[m].field if m in MODALITIES else m
        if source not in raw:
            raise ModelError(f"modality {m} needs the {source!r} field, which is not given")
        value = raw[source]
        if m == "rgb":
            out[m] = rgb_to_input(value)
        elif m == "saliency":
            out[m] = saliency_to_input(value)
        elif m == "depth":
            out[m] = standardize_depth(value)
        elif m == "normals":
            out[m] = normals_from_depth(value, fovy_degrees)
        else:
            out[m] = value.float()
    return out


def output_to_image(modality: str, image: Tensor) -> Tensor:
    """A modality's input-space image -> displayable RGB in [0, 1], (N, 3, H, W)."""
    if modality == "rgb":
        x = rgb_from_input(image)
    elif modality == "saliency":
        x = image.clamp(0.0, 1.0)
    elif modality == "normals":
        x = (image.clamp(-1.0, 1.0) + 1.0) / 2.0
    else:  # depth and others: min-max per image
        flat = image.flatten(1)
        low = flat.min(dim=1).values[:, None, None, None]
        high = flat.max(dim=1).values[:, None, None, None]
        x = (image - low) / (high - low).clamp_min(1e-6)
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x[:, :3]
