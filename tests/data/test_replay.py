"""The replay buffer: transitions within episodes only, the ring, exact state round trip."""

import numpy as np
import pytest
import torch

from saliency_rl.data.replay import ReplayBuffer, ReplayError

FIELDS = {"rgb": ((3, 4, 4), torch.uint8), "saliency": ((1, 4, 4), torch.uint8)}


def obs(value):
    return {
        "rgb": np.full((3, 4, 4), value, np.uint8),
        "saliency": np.full((1, 4, 4), 255 - value, np.uint8),
    }


def fill(buffer, episodes, length, start=0):
    """Observation values count up; action = reward = the value of the step's first obs."""
    value = start
    for _ in range(episodes):
        buffer.start(obs(value))
        for t in range(length):
            buffer.add([value, -value], float(value), obs(value + 1), terminated=t == length - 1)
            value += 1
        value += 1
    return value


def test_samples_are_transitions_of_one_episode():
    buffer = ReplayBuffer(100, FIELDS, action_dim=2, seed=0)
    fill(buffer, episodes=3, length=5)
    assert len(buffer) == 15 and buffer.transitions == 15
    batch = buffer.sample(256)
    first = batch.obs["rgb"][:, 0, 0, 0].long()
    assert batch.obs["rgb"].dtype == torch.uint8  # stored and sampled as uint8
    assert torch.equal(batch.next_obs["rgb"][:, 0, 0, 0].long(), first + 1)
    assert torch.equal(batch.next_obs["saliency"][:, 0, 0, 0].long(), 255 - first - 1)
    assert torch.equal(batch.action[:, 0].long(), first)
    assert torch.equal(batch.reward[:, 0].long(), first)
    # The last step of each episode (values 4, 10, 16) is terminal; no transition starts at
    # an episode's last observation (5, 11, 17).
    terminal = torch.isin(first, torch.tensor([4, 10, 16]))
    assert torch.equal(batch.discount[:, 0] == 0, terminal)
    assert not torch.isin(first, torch.tensor([5, 11, 17])).any()
    assert set(first.tolist()) == set(range(18)) - {5, 11, 17}


def test_ring_drops_the_oldest():
    buffer = ReplayBuffer(8, FIELDS, action_dim=2, seed=0)
    fill(buffer, episodes=4, length=3)  # 16 observations through 8 slots
    firsts = set(buffer.sample(500).obs["rgb"][:, 0, 0, 0].tolist())
    # Kept: the last 8 observations, 12..15 and 8..11 of the last two episodes (values
    # 8, 9, 10 | 12, 13, 14 start transitions; 11 and 15 end their episodes).
    assert firsts == {8, 9, 10, 12, 13, 14}


def test_state_round_trip_samples_identically():
    buffer = ReplayBuffer(50, FIELDS, action_dim=2, seed=3)
    fill(buffer, episodes=2, length=6)
    buffer.sample(7)
    copy = ReplayBuffer(50, FIELDS, action_dim=2, seed=99)
    copy.load_state(buffer.state())
    a, b = buffer.sample(32), copy.sample(32)
    for name in FIELDS:
        assert torch.equal(a.obs[name], b.obs[name])
        assert torch.equal(a.next_obs[name], b.next_obs[name])
    assert torch.equal(a.action, b.action) and torch.equal(a.discount, b.discount)
    # Both go on alike after more steps.
    fill(buffer, 1, 3, start=50)
    fill(copy, 1, 3, start=50)
    assert torch.equal(buffer.sample(16).obs["rgb"], copy.sample(16).obs["rgb"])


def test_float_features():
    buffer = ReplayBuffer(10, {"features": ((6,), torch.float32)}, action_dim=1, seed=0)
    buffer.start({"features": np.zeros(6, np.float32)})
    buffer.add([0.5], 1.0, {"features": np.ones(6, np.float32)}, terminated=False)
    batch = buffer.sample(4)
    assert batch.obs["features"].dtype == torch.float32
    assert torch.all(batch.next_obs["features"] == 1) and torch.all(batch.discount == 1)


def test_clear_errors():
    buffer = ReplayBuffer(10, FIELDS, action_dim=2)
    with pytest.raises(ReplayError, match="no transition"):
        buffer.sample(1)
    with pytest.raises(ReplayError, match="call start"):
        buffer.add([0, 0], 0.0, obs(1), False)
    with pytest.raises(ReplayError, match="lacks saliency"):
        buffer.start({"rgb": obs(0)["rgb"]})
    with pytest.raises(ReplayError, match=r"shape \(3, 5, 5\)"):
        buffer.start({**obs(0), "rgb": np.zeros((3, 5, 5), np.uint8)})
    with pytest.raises(ReplayError, match=">= 2"):
        ReplayBuffer(1, FIELDS, action_dim=2)
