"""n-step transitions from the replay buffer (DrQ-v2 uses n = 3): ``sample_nstep``.

A transition starting at slot i sums the next n rewards, discounted, and bootstraps from
the observation n steps later:

    R = r_i + g r_{i+1} + ... + g^(k-1) r_{i+k-1},   target = R + d g^k V(s_{i+k})

with k = n, or fewer where the episode ends first: at a termination (d = 0, nothing to
bootstrap) or at a time limit or the newest stored step (d = 1, bootstrap from the last
observation there). The agent computes its target as ``reward + discount * gamma * V``,
so the batch's ``discount`` carries ``d g^(k-1)``: with n = 1 that is the replay's own
0 / 1 and the batch is exactly ``ReplayBuffer.sample``'s.

The slots are drawn by the buffer's own ``sample_indices``, so a seeded buffer samples the
same transitions and resumes exactly; the n steps are walked with n vectorised lookups,
never a loop over samples.
"""

from __future__ import annotations

import torch

from saliency_rl.data.replay import Batch, ReplayBuffer


def sample_nstep(
    replay: ReplayBuffer,
    batch_size: int,
    n: int,
    gamma: float,
    device: str | torch.device = "cpu",
) -> Batch:
    """``batch_size`` n-step transitions drawn uniformly (with replacement); see the module
    docstring for what ``reward`` and ``discount`` hold."""
    if n <= 1:
        return replay.sample(batch_size, device)
    index = torch.from_numpy(replay.sample_indices(batch_size))  # (B,) first slots
    capacity = replay.capacity
    valid = torch.from_numpy(replay.valid)
    reward = replay.reward.index_select(0, index)  # (B, 1)
    discount = replay.discount.index_select(0, index)  # (B, 1): d of the last step taken
    power = torch.ones(batch_size, 1)  # g^(k-1)
    last = index.clone()  # slot of the last step taken
    going = discount[:, 0] > 0  # whether the walk may take another step
    for j in range(1, n):
        slot = (index + j) % capacity
        going &= valid[slot]  # slot starts a stored transition of the same episode
        if not going.any():
            break
        keep = going[:, None]
        step_discount = replay.discount.index_select(0, slot)
        reward = reward + keep * (gamma**j) * replay.reward.index_select(0, slot)
        power = torch.where(keep, torch.full_like(power, gamma**j), power)
        discount = torch.where(keep, step_discount, discount)
        last = torch.where(going, slot, last)
        going &= step_discount[:, 0] > 0
    return replay.batch_at(index, (last + 1) % capacity, device, reward, discount * power)
