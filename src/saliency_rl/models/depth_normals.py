"""Depth and surface normals as MultiMAE modalities (the ablation beside RGB and saliency).

Depth comes from a dataset's ``depth`` field (float16 or uint16 (T, H, W), one map per frame,
written at collection time; see the report of issue 4). Two things are derived from it here:

- ``standardize_depth``: MultiMAE's per-image truncated standardisation (Bachmann et al.,
  ECCV 2022, ``run_pretraining_multimae.py``: mean and variance over the values between the
  10th and 90th percentile), so near and far scenes give inputs of the same scale;
- ``normals_from_depth``: unit surface normals by finite differences, either of the
  back-projected 3-D points (when the camera's vertical field of view is known: MuJoCo
  cameras default to 45 degrees) or of the depth map as a height field (when it is not).

Normals are in the camera frame, x right, y down, z forward, and face the camera (z <= 0).
Flipping depth horizontally and then computing normals gives the normals of the mirrored
scene, so augmentations flip depth first and derive normals after.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

TRUNCATION = 0.1  # MultiMAE drops the lowest and highest 10% of depth values for the statistics


def standardize_depth(depth: torch.Tensor, truncation: float = TRUNCATION) -> torch.Tensor:
    """Per-image truncated standardisation of depth maps.

    Args:
        depth: (N, H, W) depth, any float or integer dtype.
        truncation: share of the lowest and of the highest values left out of the mean and
            variance (MultiMAE: 0.1).

    Returns:
        float32 (N, 1, H, W): (depth - mean) / sqrt(var + 1e-6) with the truncated statistics.
    """
    depth = depth.float()
    n = depth.shape[0]
    flat = depth.reshape(n, -1).sort(dim=1).values  # (N, H*W)
    count = flat.shape[1]
    low, high = (
        int(truncation * count),
        max(int((1 - truncation) * count), int(truncation * count) + 2),
    )
    kept = flat[:, low:high]  # (N, ~0.8 H*W)
    mean = kept.mean(dim=1)[:, None, None, None]  # (N, 1, 1, 1)
    var = kept.var(dim=1)[:, None, None, None]
    return (depth[:, None] - mean) / torch.sqrt(var + 1e-6)  # (N, 1, H, W)


def normals_from_depth(depth: torch.Tensor, fovy_degrees: float | None = 45.0) -> torch.Tensor:
    """Unit surface normals of depth maps by central finite differences.

    Args:
        depth: (N, H, W) distance along the camera's viewing axis (MuJoCo's depth render).
        fovy_degrees: the camera's vertical field of view. With it, pixels are back-projected
            to 3-D points with a pinhole model and the normal is the cross product of the
            point differences along x and y. With None, the depth map is treated as a height
            field over the pixel grid: n ~ (dz/du, dz/dv, -1).

    Returns:
        float32 (N, 3, H, W), unit vectors facing the camera (z <= 0); (0, 0, -1) where the
        differences vanish (flat or constant depth).
    """
    if depth.ndim != 3:
        raise ValueError(f"depth must be (N, H, W), got shape {tuple(depth.shape)}")
    depth = depth.float()
    n, height, width = depth.shape
    if fovy_degrees is None:
        points = depth[:, None]  # (N, 1, H, W): the height field alone
    else:
        focal = (height / 2) / math.tan(math.radians(fovy_degrees) / 2)  # pixels
        v = torch.arange(height, dtype=torch.float32, device=depth.device) + 0.5 - height / 2
        u = torch.arange(width, dtype=torch.float32, device=depth.device) + 0.5 - width / 2
        x = depth * u[None, None, :] / focal  # (N, H, W)
        y = depth * v[None, :, None] / focal
        points = torch.stack([x, y, depth], dim=1)  # (N, 3, H, W)
    # Central differences inside, one-sided at the border (replicate padding).
    padded = F.pad(points, (1, 1, 1, 1), mode="replicate")  # (N, c, H+2, W+2)
    d_du = (padded[:, :, 1:-1, 2:] - padded[:, :, 1:-1, :-2]) / 2  # (N, c, H, W)
    d_dv = (padded[:, :, 2:, 1:-1] - padded[:, :, :-2, 1:-1]) / 2
    if fovy_degrees is None:
        ones = torch.ones_like(d_du)
        normals = torch.cat([d_du, d_dv, -ones], dim=1)  # (N, 3, H, W)
    else:
        normals = torch.cross(d_du, d_dv, dim=1)  # (N, 3, H, W)
        # Orient towards the camera: the normal and the viewing ray point in opposite directions.
        facing = (normals * points).sum(dim=1, keepdim=True) > 0
        normals = torch.where(facing, -normals, normals)
    length = normals.norm(dim=1, keepdim=True)
    fallback = torch.tensor([0.0, 0.0, -1.0], device=depth.device)[None, :, None, None]
    normals = torch.where(length > 1e-12, normals / length.clamp_min(1e-12), fallback)
    return normals.expand(n, 3, height, width).contiguous()
