"""On-disk datasets and the rollout collector."""

from saliency_rl.data.dataset import Dataset, FieldSpec

__all__ = ["Dataset", "FieldSpec"]
