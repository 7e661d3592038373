"""The frozen MultiMAE encoder: modes, saliency sources, stacked frames, env wrapper, cache."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from saliency_rl.envs import make_env
from saliency_rl.errors import DatasetError
from saliency_rl.models.frozen_encoder import (
    FeatureObservationWrapper,
    FrozenMultiMAEEncoder,
    cache_dataset_features,
)
from saliency_rl.models.multimae import ModelError, multimae_tiny, rgb_to_input
from saliency_rl.saliency.maps import clicks_to_map, map_to_uint8

SIZE = 32


class RedPredictor:
    """Stand-in for SaliencyPredictor: how red each pixel is, in [0, 1]."""

    def __init__(self):
        self.calls = 0

    def predict_torch(self, frames):
        self.calls += 1
        red = frames[:, 0].float() - frames[:, 1:].float().mean(1)
        return (red / 255.0).clamp(0, 1)

    def predict(self, frames):
        return self.predict_torch(torch.from_numpy(frames)).numpy()


def model(modalities, seed=0):
    torch.manual_seed(seed)
    return multimae_tiny(modalities, image_size=SIZE)


def frames(n=2, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, channels, SIZE, SIZE), dtype=np.uint8)


def test_modes_match_the_pretraining():
    with pytest.raises(ModelError, match="RGB-only pretraining"):
        FrozenMultiMAEEncoder(model(("rgb", "saliency")), "rgb")
    with pytest.raises(ModelError, match="needs a model pretrained on rgb and saliency"):
        FrozenMultiMAEEncoder(model(("rgb",)), "rgb+saliency")
    with pytest.raises(ModelError, match="unknown encoder mode"):
        FrozenMultiMAEEncoder(model(("rgb",)), "saliency")
    rgb_only = FrozenMultiMAEEncoder(model(("rgb",)), "rgb")
    x = frames()
    out = rgb_only(x)
    assert out.shape == (2, 32) and out.dtype == np.float32


def test_pretrain_only_mode_encodes_rgb_alone():
    net = model(("rgb", "saliency"))
    encoder = FrozenMultiMAEEncoder(net, "rgb+saliency-pretrain-only")
    x = frames()
    expected = net.features({"rgb": rgb_to_input(torch.from_numpy(x))}).numpy()
    assert np.allclose(encoder(x, saliency=np.ones((2, SIZE, SIZE), np.float32)), expected)
    # Mean of the encoded patch tokens, deterministic.
    assert np.array_equal(encoder(x), encoder(x))


def test_rgb_plus_saliency_predicts_maps_or_takes_them():
    predictor = RedPredictor()
    encoder = FrozenMultiMAEEncoder(model(("rgb", "saliency")), "rgb+saliency", predictor)
    x = frames()
    predicted = encoder(x)
    assert predictor.calls == 1
    maps = predictor.predict(x)  # (N, H, W) float
    assert np.allclose(encoder(x, saliency=maps[:, None]), predicted, atol=1e-6)
    assert not np.allclose(encoder(x, saliency=np.zeros_like(maps)), predicted)
    bare = FrozenMultiMAEEncoder(model(("rgb", "saliency")), "rgb+saliency")
    with pytest.raises(ModelError, match="needs saliency maps"):
        bare(x)
    assert bare(x, saliency=maps).shape == (2, 32)


def test_rgb_x_saliency_sees_only_what_the_map_keeps():
    net = model(("rgb",))
    encoder = FrozenMultiMAEEncoder(net, "rgb_x_saliency", RedPredictor())
    assert encoder.needs_saliency and encoder.feature_dim == 32
    x = frames()
    maps = np.zeros((2, 1, SIZE, SIZE), np.float32)
    maps[:, :, 8:20, 8:20] = 1.0
    maps[:, :, 20:24, 8:20] = 0.5
    masked = torch.from_numpy(x).float() * torch.from_numpy(maps)
    expected = net.features({"rgb": rgb_to_input(masked)}).numpy()
    assert np.allclose(encoder(x, saliency=maps), expected, atol=1e-6)
    # A new background where the map is 0 changes nothing: the point of the mode.
    other = frames(seed=1)
    kept = maps[:, 0] > 0
    other[:, :, kept[0]] = x[:, :, kept[0]]
    assert np.array_equal(encoder(other, saliency=maps), encoder(x, saliency=maps))
    assert not np.allclose(encoder(x), encoder(other))  # predicted maps: red decides
    with pytest.raises(ModelError, match="needs a model pretrained on rgb"):
        FrozenMultiMAEEncoder(model(("saliency",)), "rgb_x_saliency")
    with pytest.raises(ModelError, match="mode rgb_x_saliency needs saliency maps"):
        FrozenMultiMAEEncoder(net, "rgb_x_saliency")(x)


def test_stacked_frames_give_concatenated_features():
    encoder = FrozenMultiMAEEncoder(model(("rgb", "saliency")), "rgb+saliency", RedPredictor())
    stacked = frames(2, channels=9)
    out = encoder(stacked)
    assert out.shape == (2, 96) and encoder.output_dim(9) == 96
    for i in range(3):
        assert np.allclose(out[:, 32 * i : 32 * (i + 1)], encoder(stacked[:, 3 * i : 3 * i + 3]))
    with pytest.raises(ModelError, match="not a multiple"):
        encoder(frames(1, channels=4))
    with pytest.raises(ModelError, match="pretrained on 32x32"):
        encoder(np.zeros((1, 3, 64, 64), np.uint8))


def test_load_from_checkpoint_or_run_directory(tmp_path):
    net = model(("rgb",), seed=3)
    net.save_pretrained(tmp_path / "run" / "checkpoints" / "step_000002")
    net.save_pretrained(tmp_path / "run" / "checkpoints" / "step_000010")
    encoder = FrozenMultiMAEEncoder.load(tmp_path / "run", device="cpu")
    assert encoder.mode == "rgb" and encoder.checkpoint.name == "step_000010"
    x = frames()
    assert np.allclose(encoder(x), FrozenMultiMAEEncoder(net, "rgb")(x))
    with pytest.raises(ModelError, match="holds no MultiMAE checkpoint"):
        FrozenMultiMAEEncoder.load(tmp_path / "nothing")


def test_observation_wrapper_on_a_pixel_env():
    encoder = FrozenMultiMAEEncoder(model(("rgb", "saliency")), "rgb+saliency", RedPredictor())
    env = FeatureObservationWrapper(
        make_env("fake:square", image_size=SIZE, frame_stack=2, seed=0), encoder
    )
    assert env.observation_space == gym.spaces.Box(-np.inf, np.inf, (64,), np.float32)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (64,) and obs.dtype == np.float32
    obs, *_ = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs)
    kept = FeatureObservationWrapper(
        make_env("fake:square", image_size=SIZE, seed=0), encoder, keep=("proprio",)
    )
    obs, _ = kept.reset(seed=0)
    assert set(obs) == {"features", "proprio"} and kept.observation_space.contains(obs)
    with pytest.raises(ModelError, match="image_size=32"):
        FeatureObservationWrapper(make_env("fake:square", image_size=64), encoder)


def test_dataset_features_are_cached_once(fake_dataset):
    encoder = FrozenMultiMAEEncoder(model(("rgb",)), "rgb")
    name = cache_dataset_features(fake_dataset, encoder, name="features_mae", progress=False)
    assert name == "features_mae" and fake_dataset.has_field(name)
    episode = fake_dataset.episode(1, ["rgb", name])
    assert episode[name].shape == (21, 32) and episode[name].dtype == np.float32
    assert np.allclose(episode[name], encoder(episode["rgb"]), atol=1e-6)
    provenance = fake_dataset.meta["extra_fields"][name]["provenance"]
    assert provenance["mode"] == "rgb" and provenance["fingerprint"] == encoder.fingerprint()
    # Same weights: reused as they are. Other weights: an error unless overwrite.
    path = fake_dataset.root / "fields" / name / "episode_000000.npz"
    written = path.stat().st_mtime_ns
    cache_dataset_features(fake_dataset, encoder, name="features_mae", progress=False)
    assert path.stat().st_mtime_ns == written
    other = FrozenMultiMAEEncoder(model(("rgb",), seed=9), "rgb")
    with pytest.raises(DatasetError, match="another model"):
        cache_dataset_features(fake_dataset, other, name="features_mae", progress=False)
    cache_dataset_features(fake_dataset, other, name="features_mae", overwrite=True, progress=False)
    assert np.allclose(fake_dataset.episode(0, [name])[name], other(fake_dataset.episode(0)["rgb"]))


def test_dataset_features_with_the_dataset_saliency_field(fake_dataset):
    encoder = FrozenMultiMAEEncoder(model(("rgb", "saliency")), "rgb+saliency")
    with pytest.raises(ModelError, match="no predictor"):
        cache_dataset_features(fake_dataset, encoder, progress=False)
    for e in range(fake_dataset.num_episodes):
        points = fake_dataset.episode(e, ["salient_points"])["salient_points"]
        maps = np.stack([map_to_uint8(clicks_to_map(p, SIZE, SIZE)) for p in points])
        fake_dataset.write_field("saliency", e, maps)
    name = cache_dataset_features(fake_dataset, encoder, progress=False)
    assert name == "features_model_rgb_saliency"
    data = fake_dataset.episode(2, ["rgb", "saliency", name])
    assert np.allclose(data[name], encoder(data["rgb"], data["saliency"]), atol=1e-6)
    assert fake_dataset.meta["extra_fields"][name]["provenance"]["saliency_source"] == "dataset"


def test_a_policy_optimizer_gets_no_encoder_parameter():
    encoder = FrozenMultiMAEEncoder(model(("rgb", "saliency")), "rgb+saliency-pretrain-only")
    assert not any(p.requires_grad for p in encoder.model.parameters())
    policy = torch.nn.Linear(encoder.output_dim(3), 2)
    # What a trainer does: optimise every parameter that wants gradients.
    trainable = [p for p in [*policy.parameters(), *encoder.model.parameters()] if p.requires_grad]
    optimizer = torch.optim.Adam(trainable)
    ids = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert ids == {id(p) for p in policy.parameters()}
    before = {k: v.clone() for k, v in encoder.model.state_dict().items()}
    features = encoder.encode_torch(torch.from_numpy(frames(2)))
    policy(features).sum().backward()
    optimizer.step()
    assert all(torch.equal(before[k], v) for k, v in encoder.model.state_dict().items())
    assert not features.requires_grad
