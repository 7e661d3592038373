"""Train the Transporter keypoint baseline: ``saliency-rl pretrain-transporter``.

On the frames the attention module is pretrained on (``saliency-rl collect --env
atari:<Game>``, grey 84x84), with the same frame pairs: source and target of one episode, 1 to
``max_gap`` steps apart (pretrain.pair_training's sampler and loop). Adam, lr 1e-3 (the paper's),
gradients clipped at 1.

Output directory (a checkpoint, replaced atomically at every save)::

    OUT/
      config.json          the model (K keypoints, ...) and its provenance: datasets, settings
      model.safetensors    the weights
      training_state/      optimizer, step, RNG states: ``--resume`` continues bit for bit
      metrics.csv          one row per log interval: loss, pairs/s
      tb/                  the same rows as TensorBoard events
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from saliency_rl.models.transporter import Transporter, save_transporter
from saliency_rl.pretrain.pair_training import PairModel, PairPretrainConfig, pretrain_on_pairs

METRIC_COLUMNS = ("step", "time", "pairs_per_s", "transporter_loss")


@dataclass
class TransporterPretrainConfig(PairPretrainConfig):
    """Settings of Transporter training: the pair pretraining's (Adam lr 1e-3 as Kulkarni et
    al. 2019, the attention pretraining's batch and pairs), plus the model's."""

    max_grad_norm: float = 1.0
    """Gradients are clipped to this global L2 norm."""
    checkpoint_every: int = 500
    """Steps between saves of the checkpoint (and at the end)."""
    num_keypoints: int = 5
    """K, the keypoints per frame (compare with the attention module at k = K)."""
    width: int = 32
    """Channels of the first convolutions (the rest have twice as many)."""
    gaussian_std: float = 0.1
    """Keypoint Gaussians' standard deviation, of the [-1, 1] frame (the paper's 0.1)."""

    def positive_fields(self) -> tuple[str, ...]:
        return ("num_keypoints", "width", "gaussian_std")


def _build(
    config: TransporterPretrainConfig, frame_shape: tuple[int, ...], device: torch.device
) -> Transporter:
    model = Transporter(config.num_keypoints, width=config.width, gaussian_std=config.gaussian_std)
    return model.to(device)


TRANSPORTER = PairModel(
    name="pretrain-transporter",
    what="Transporter",
    atari_only=True,
    config=TransporterPretrainConfig,
    build=_build,
    loss=lambda model, config: model.loss,
    columns=METRIC_COLUMNS,
    loss_key="transporter_loss",
    save=save_transporter,
)


pretrain_transporter = functools.partial(pretrain_on_pairs, TRANSPORTER)
"""``pretrain_transporter(datasets, out_dir, steps=None, *, config=TransporterPretrainConfig(), resume=False,
device="auto", progress=True) -> out_dir``: train a Transporter on the datasets' frame pairs
(pair_training.pretrain_on_pairs)."""


__all__ = ["TRANSPORTER", "TransporterPretrainConfig", "pretrain_transporter"]
