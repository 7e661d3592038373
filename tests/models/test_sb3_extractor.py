"""Our pixel CNN inside Stable-Baselines3: same features as ours, and SB3's SAC trains with it."""

import gymnasium as gym
import numpy as np
import pytest
import torch

pytest.importorskip("stable_baselines3")

from stable_baselines3 import SAC  # noqa: E402
from stable_baselines3.common.logger import Logger  # noqa: E402
from stable_baselines3.common.preprocessing import preprocess_obs  # noqa: E402

from saliency_rl.models.pixel_cnn import EncoderError  # noqa: E402
from saliency_rl.models.sb3_extractor import PixelCNNExtractor  # noqa: E402


class Pixels(gym.Env):
    """Random 32x32 frames (and maps): only the spaces matter to these tests."""

    def __init__(self, saliency=False):
        rgb = gym.spaces.Box(0, 255, (6, 32, 32), np.uint8)
        self.observation_space = (
            gym.spaces.Dict({"rgb": rgb, "saliency": gym.spaces.Box(0, 255, (2, 32, 32), np.uint8)})
            if saliency
            else rgb
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        self.t += 1
        return self.observation_space.sample(), float(action[0]), False, self.t >= 5, {}


def test_features_match_our_cnn_after_sb3_preprocessing():
    space = Pixels(saliency=True).observation_space
    extractor = PixelCNNExtractor(space, mode="rgbs", num_layers=3, projection_dim=100)
    assert extractor.features_dim == 100
    obs = {k: torch.from_numpy(np.stack([v.sample() for _ in range(2)])) for k, v in space.items()}
    sb3_input = preprocess_obs(obs, space, normalize_images=True)  # floats in [0, 1]
    ours = extractor.projection(extractor.cnn(obs["rgb"], obs["saliency"]))
    assert torch.allclose(extractor(sb3_input), ours, atol=1e-5)
    with pytest.raises(EncoderError, match="needs Dict observations"):
        PixelCNNExtractor(Pixels().observation_space, mode="rgbs")


@pytest.mark.slow
@pytest.mark.parametrize("saliency", [False, True])
def test_sb3_sac_trains_with_it(saliency):
    kwargs = dict(mode="rgbs" if saliency else "rgb", num_layers=3, projection_dim=16)
    model = SAC(
        "MultiInputPolicy" if saliency else "CnnPolicy",
        Pixels(saliency),
        buffer_size=50,
        batch_size=4,
        learning_starts=5,
        seed=0,
        device="cpu",
        policy_kwargs=dict(
            features_extractor_class=PixelCNNExtractor,
            features_extractor_kwargs=kwargs,
            net_arch=[16],
        ),
    )
    # SB3's default logger makes a folder under /tmp at every learn(); an empty one makes none.
    model.set_logger(Logger(folder=None, output_formats=[]))
    before = [p.detach().clone() for p in model.critic.features_extractor.parameters()]
    model.learn(12)
    after = list(model.critic.features_extractor.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert isinstance(model.actor.features_extractor, PixelCNNExtractor)
