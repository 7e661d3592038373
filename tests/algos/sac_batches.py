"""Replay batches, parameter snapshots and run readers shared by the SAC tests (imported by
name: ``from sac_batches import ...``)."""

import csv

import torch

from saliency_rl.checkpoint import load_checkpoint
from saliency_rl.data.replay import ReplayBuffer


def batch_of(n=8, seed=0, saliency=False):
    g = torch.Generator().manual_seed(seed)
    fields = {"rgb": ((3, 32, 32), torch.uint8)}
    if saliency:
        fields["saliency"] = ((1, 32, 32), torch.uint8)
    buffer = ReplayBuffer(64, fields, action_dim=2, seed=seed)

    def obs():
        return {k: torch.randint(0, 256, s, generator=g, dtype=d) for k, (s, d) in fields.items()}

    buffer.start(obs())
    for t in range(20):
        buffer.add(torch.rand(2, generator=g) * 2 - 1, float(t), obs(), terminated=False)
    return buffer.sample(n)


def params(module):
    return [p.detach().clone() for p in module.parameters()]


def changed(before, module):
    return [not torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True)]


def read_rows(run):
    with (run / "metrics.csv").open() as handle:
        return [
            {k: v for k, v in r.items() if k not in ("time", "fps")} for r in csv.DictReader(handle)
        ]


def weights(run):
    return load_checkpoint(run / "checkpoints" / "latest")[1]
