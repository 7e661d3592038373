"""CURL's contrastive loss (Srinivas, Laskin, Abbeel, ICML 2020) as an auxiliary loss of SAC.

Two random translations of the same observation are a positive pair; the other
observations of the batch are negatives. The query ``q`` comes from the online encoder
(and the critic's projection to the feature size), the key ``k`` from a momentum copy of
them (an exponential moving average, never trained by gradients). The similarity is
bilinear, ``q^T W k``, and the loss InfoNCE: cross-entropy of each query's row of
logits against its own key.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BilinearInfoNCE(nn.Module):
    """``W`` of CURL's similarity and its loss.

    Args:
        dim: size of the query and key vectors.

    ``forward(query, key)``: float (B, dim) each -> scalar loss. logits = q W k^T (B, B);
    the positive of row i is column i.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.W = nn.Parameter(torch.rand(dim, dim))  # CURL initialises W uniformly in [0, 1)

    def forward(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        logits = query @ self.W @ key.detach().T  # (B, B)
        logits = logits - logits.max(dim=1, keepdim=True).values.detach()  # stability, as CURL
        labels = torch.arange(len(query), device=query.device)
        return F.cross_entropy(logits, labels)
