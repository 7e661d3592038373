"""n-step transitions from the replay buffer, against sums worked out by hand."""

import pytest
import torch

from saliency_rl.algos.nstep import sample_nstep
from saliency_rl.data.replay import ReplayBuffer

GAMMA = 0.5


def episodes(capacity=32):
    """Episode A: 4 steps ending at a time limit; episode B: 3 steps ending terminated.
    Rewards 1, 2, 3, 4 and 10, 20, 30; observation i holds the value of its slot."""
    buffer = ReplayBuffer(capacity, {"x": ((1,), torch.float32)}, action_dim=1, seed=0)
    slot = iter(range(100))
    buffer.start({"x": [float(next(slot))]})
    for r in (1, 2, 3, 4):
        buffer.add([0.0], r, {"x": [float(next(slot))]}, terminated=False)
    buffer.start({"x": [float(next(slot))]})
    for i, r in enumerate((10, 20, 30)):
        buffer.add([0.0], r, {"x": [float(next(slot))]}, terminated=i == 2)
    return buffer


def by_start(batch):
    return {int(x): (float(r), float(d), int(y)) for x, r, d, y in zip(
        batch.obs["x"][:, 0], batch.reward[:, 0], batch.discount[:, 0], batch.next_obs["x"][:, 0],
        strict=True)}  # fmt: skip


def test_three_step_returns_stop_at_episode_ends():
    seen = by_start(sample_nstep(episodes(), 256, 3, GAMMA))
    # (reward sum, discount carried: d * g^(k-1), next observation's slot)
    assert seen[0] == (1 + 0.5 * 2 + 0.25 * 3, 0.25, 3)
    assert seen[1] == (2 + 0.5 * 3 + 0.25 * 4, 0.25, 4)
    assert seen[2] == (3 + 0.5 * 4, 0.5, 4)  # time limit after 2 steps: bootstrap g^2
    assert seen[3] == (4, 1.0, 4)
    assert seen[5] == (10 + 0.5 * 20 + 0.25 * 30, 0.0, 8)  # terminated: nothing to bootstrap
    assert seen[6] == (20 + 0.5 * 30, 0.0, 8)
    assert seen[7] == (30, 0.0, 8)
    assert set(seen) == {0, 1, 2, 3, 5, 6, 7}  # the last observations start nothing


def test_one_step_is_the_replays_own_sample():
    a, b = episodes(), episodes()
    one, plain = sample_nstep(a, 16, 1, GAMMA), b.sample(16)
    assert torch.equal(one.obs["x"], plain.obs["x"]) and torch.equal(one.reward, plain.reward)
    assert torch.equal(one.discount, plain.discount)


def test_walk_stops_at_the_newest_slot_of_a_wrapped_ring():
    buffer = ReplayBuffer(5, {"x": ((1,), torch.float32)}, action_dim=1, seed=0)
    buffer.start({"x": [0.0]})
    for t in range(1, 8):  # 8 observations into 5 slots: slots hold obs 5, 6, 7, 3, 4
        buffer.add([0.0], float(t), {"x": [float(t)]}, terminated=False)
    seen = by_start(sample_nstep(buffer, 256, 3, GAMMA))
    assert seen[3] == (4 + 0.5 * 5 + 0.25 * 6, 0.25, 6)  # across the ring's end
    assert seen[6] == (7, 1.0, 7)  # the newest observation ends the walk
    assert 7 not in seen


@pytest.mark.parametrize("n", [2, 5])
def test_sampling_is_seeded(n):
    a, b = sample_nstep(episodes(), 32, n, GAMMA), sample_nstep(episodes(), 32, n, GAMMA)
    assert torch.equal(a.reward, b.reward) and torch.equal(a.next_obs["x"], b.next_obs["x"])
