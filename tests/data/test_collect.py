import numpy as np
import pytest

from saliency_rl.data.collect import collect
from saliency_rl.data.dataset import Dataset
from saliency_rl.errors import DatasetError, EnvSpecError


def test_episode_alignment(fake_dataset):
    episode = fake_dataset.episode(0)
    assert len(episode["rgb"]) == 21  # 20 steps -> 21 frames
    assert episode["rgb"].shape == (21, 3, 32, 32) and episode["rgb"].dtype == np.uint8
    assert episode["salient_points"].shape == (21, 1, 2)
    assert (
        not episode["action"][-1].any() and episode["reward"][-1] == 0
    )  # the last frame takes no action
    assert episode["action"][:-1].any()
    assert not episode["terminal"].any()  # a time limit is not a terminal state


def test_frames_budget_cuts_the_last_episode(tmp_path):
    dataset = collect(
        "fake:square",
        tmp_path / "d",
        frames=50,
        progress=False,
        env_options={"image_size": 32, "episode_length": 20},
    )
    assert dataset.num_frames == 50
    assert list(dataset.episode_lengths) == [21, 21, 8]


def test_frame_stack_stores_the_newest_frame(tmp_path):
    dataset = collect(
        "fake:square",
        tmp_path / "d",
        episodes=1,
        progress=False,
        env_options={"image_size": 32, "episode_length": 5, "frame_stack": 3},
    )
    assert dataset.fields["rgb"].shape == (3, 32, 32)


def test_append_same_spec_and_refuse_other(tmp_path, fake_dataset):
    collect("fake:square", fake_dataset.root, episodes=2, progress=False)
    dataset = Dataset.open(fake_dataset.root)
    assert dataset.num_episodes == 5
    # New episodes get new seeds, so they are not copies of the first ones.
    assert not np.array_equal(dataset.episode(3)["rgb"], dataset.episode(0)["rgb"])
    assert len(dataset.meta["provenance"]["collections"]) == 2
    with pytest.raises(DatasetError, match="holds fake:square, not dmc:cartpole-swingup"):
        collect("dmc:cartpole-swingup", fake_dataset.root, episodes=1, progress=False)
    with pytest.raises(DatasetError, match="other env options"):
        collect(
            "fake:square",
            fake_dataset.root,
            episodes=1,
            progress=False,
            env_options={"image_size": 16},
        )
    assert Dataset.open(fake_dataset.root).num_episodes == 5


def test_same_seed_same_data(tmp_path):
    a = collect("fake:square", tmp_path / "a", episodes=2, seed=3, progress=False)
    b = collect("fake:square", tmp_path / "b", episodes=2, seed=3, progress=False)
    for e in range(2):
        for name, array in a.episode(e).items():
            np.testing.assert_array_equal(array, b.episode(e)[name])


def test_bad_budget_and_policy(tmp_path):
    with pytest.raises(DatasetError, match="exactly one budget"):
        collect("fake:square", tmp_path / "d", episodes=1, frames=10)
    with pytest.raises(DatasetError, match="positive integer"):
        collect("fake:square", tmp_path / "d", episodes=0)
    with pytest.raises(EnvSpecError, match="only metaworld tasks"):
        collect("fake:square", tmp_path / "d", episodes=1, policy="expert", progress=False)
    with pytest.raises(EnvSpecError, match="valid policies"):
        collect("fake:square", tmp_path / "d", episodes=1, policy="smart")


def test_depth_is_rendered_and_recorded(tmp_path):
    dataset = collect("dmc:cartpole-swingup", tmp_path / "d", frames=6, progress=False, depth=True)
    depth = dataset.episode(0)["depth"]
    assert depth.dtype == np.float16 and depth.shape == (6, 64, 64)
    assert np.isfinite(depth).all() and depth.min() > 0 and depth.max() > depth.min()
    assert dataset.meta["camera"]["fovy_degrees"] == 45.0
    with pytest.raises(DatasetError, match="collected with depth"):
        collect("dmc:cartpole-swingup", tmp_path / "d", frames=6, progress=False)
    with pytest.raises(EnvSpecError, match="only dmc and metaworld"):
        collect("fake:square", tmp_path / "f", frames=6, progress=False, depth=True)


def test_metaworld_depth_is_upright_like_the_frames(tmp_path):
    dataset = collect("metaworld:reach", tmp_path / "d", frames=2, progress=False, depth=True)
    depth = dataset.episode(0)["depth"][0].astype(np.float32)
    # Upright, the nearest surface (the table's front edge) is at the bottom of the image and
    # the far wall at the top; a frame turned upside down would have it the other way round.
    assert depth[-8:].mean() < depth[:8].mean()


def test_background_masks_stored_by_default_for_mujoco_tasks(tmp_path):
    from saliency_rl.envs import make_env
    from saliency_rl.envs.distractors import BackgroundMask

    dataset = collect("dmc:walker-walk", tmp_path / "d", frames=4, progress=False, seed=3)
    background = dataset.episode(0)["background"]
    assert background.dtype == bool and background.shape == (4, 64, 64)
    # The first frame's mask is the segmentation's sky and floor of the same reset.
    env = make_env("dmc:walker-walk", seed=3)
    env.reset(seed=3)
    np.testing.assert_array_equal(background[0], BackgroundMask.everything(env)())
    env.close()
    assert 0.3 < background.mean() < 0.99  # the walker is not background
    # Appending follows the dataset; asking otherwise is refused with one line.
    collect("dmc:walker-walk", tmp_path / "d", frames=2, progress=False)
    with pytest.raises(DatasetError, match="collected with background masks"):
        collect("dmc:walker-walk", tmp_path / "d", frames=2, progress=False, background=False)
    plain = collect("dmc:walker-walk", tmp_path / "p", frames=2, progress=False, background=False)
    assert "background" not in plain.meta["fields"]
    fake = collect("fake:square", tmp_path / "f", frames=2, progress=False)
    assert "background" not in fake.meta["fields"]
    with pytest.raises(EnvSpecError, match="segmentation render"):
        collect("fake:square", tmp_path / "g", frames=2, progress=False, background=True)
