"""DMC-GB's own data as distractors (``MODE:PATH``): clips composited exactly where the
segmentation says background, per episode and per step; colour lists; bad folders and
files fail with one line. The clips are made here: DMC-GB's folder is never needed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from saliency_rl.envs import make_env
from saliency_rl.envs.distractors import BackgroundMask, distractor_name, scene_parts
from saliency_rl.envs.spec import parse_distractor
from saliency_rl.errors import EnvSpecError

CLIP_COLOURS = [(230, 20, 20), (20, 230, 20), (20, 20, 230)]  # conftest's dmcgb_clips


@pytest.mark.parametrize("mode", ["video_easy", "video_hard"])
@pytest.mark.parametrize("spec", ["dmc:walker-walk", "metaworld:reach"])
def test_clip_pixels_exactly_where_segmentation_says_background(
    dmcgb_clips, distractor_wrapper, spec, mode
) -> None:
    clean = make_env(spec, seed=0)
    env = make_env(spec, seed=0, distractor=f"{mode}:{dmcgb_clips}")
    try:
        wrapper = distractor_wrapper(env)
        parts = scene_parts(env)
        replaced_geoms = parts.easy_geoms + (parts.hard_geoms if mode == "video_hard" else ())
        mask_of = BackgroundMask(clean, replaced_geoms)
        obs, _ = env.reset(seed=5)
        clean_obs, _ = clean.reset(seed=5)
        clip = wrapper._clips.clip(wrapper.episode_draw)
        rng = np.random.default_rng(0)
        for t in range(len(clip) + 2):  # past the clip's end: it wraps around
            mask = mask_of()
            assert mask.sum() > 200
            frame, clean_frame = obs["rgb"], clean_obs["rgb"]
            np.testing.assert_array_equal(frame[:, mask], clip[t % len(clip)][mask].T)
            np.testing.assert_array_equal(frame[:, ~mask], clean_frame[:, ~mask])
            action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
            obs, *_ = env.step(action)
            clean_obs, *_ = clean.step(action)
    finally:
        env.close()
        clean.close()


def test_clip_resized_to_the_frame_and_drawn_per_episode_from_the_seed(
    dmcgb_clips, distractor_wrapper
) -> None:
    env = make_env("dmc:cartpole-swingup", seed=0, distractor=f"video_hard:{dmcgb_clips}")
    try:
        wrapper = distractor_wrapper(env)
        draws = []
        for seed in range(12):
            env.reset(seed=seed)
            draws.append(wrapper.episode_draw)
            clip = wrapper._clips.clip(wrapper.episode_draw)
            assert clip.shape == (3, 64, 64, 3) and clip.dtype == np.uint8
        assert set(draws) == {0, 1}  # both clips are drawn
        env.reset(seed=3)
        first = wrapper.episode_draw
        env.reset(seed=3)
        assert wrapper.episode_draw == first
        # The flat first frame keeps its colour through the codec and the resize.
        clip0 = wrapper._clips.clip(0)
        assert np.abs(clip0[0, 50, 50].astype(int) - CLIP_COLOURS[0]).max() < 30
    finally:
        env.close()


def test_colour_lists_set_sky_floor_and_self(tmp_path, distractor_wrapper) -> None:
    entries = [
        {"skybox_rgb": [1, 0, 0], "grid_rgb1": [0, 1, 0], "grid_rgb2": [0, 0.9, 0.1],
         "self_rgb": [0, 0, 1]},
        {"skybox_rgb": [0, 1, 1], "grid_rgb1": [1, 1, 0], "grid_rgb2": [0.9, 0.9, 0],
         "self_rgb": [1, 0, 1]},
    ]  # fmt: skip
    (tmp_path / "color_hard.json").write_text(json.dumps(entries))
    clean = make_env("dmc:cartpole-swingup", seed=0)
    env = make_env("dmc:cartpole-swingup", seed=0, distractor=f"color_hard:{tmp_path}")
    try:
        wrapper = distractor_wrapper(env)
        obs, _ = env.reset(seed=1)
        clean_obs, _ = clean.reset(seed=1)
        entry = entries[wrapper.episode_draw]
        model = wrapper.model
        self_id = [i for i in range(model.nmat) if model.material(i).name == "self"][0]
        np.testing.assert_allclose(model.mat_rgba[self_id, :3], entry["self_rgb"])
        sky = BackgroundMask(clean, ())()
        floor = BackgroundMask(clean, scene_parts(clean).hard_geoms)() & ~sky
        frame, clean_frame = obs["rgb"].astype(int), clean_obs["rgb"].astype(int)
        assert np.abs(frame[:, sky] - clean_frame[:, sky]).mean() > 10
        # The floor's checker takes the entry's colours: its dominant channel is the entry's.
        floor_colour = frame[:, floor].mean(axis=1)
        assert int(np.argmax(floor_colour)) == int(np.argmax(entry["grid_rgb1"]))
    finally:
        env.close()
        clean.close()
    with pytest.raises(EnvSpecError, match="describe dmc scenes"):
        make_env("metaworld:reach", distractor=f"color_hard:{tmp_path}")


def test_bad_folders_files_and_forms_fail_with_one_line(tmp_path, dmcgb_clips, write_clip) -> None:
    def error(mode: str, spec: str = "dmc:cartpole-swingup") -> str:
        with pytest.raises(EnvSpecError) as caught:
            make_env(spec, distractor=mode)
        message = str(caught.value)
        assert "\n" not in message
        return message

    assert "does not exist" in error(f"video_hard:{tmp_path / 'nowhere'}")
    (tmp_path / "empty").mkdir()
    assert "no video clips" in error(f"video_easy:{tmp_path / 'empty'}")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "clip.mp4").write_text("not a video")
    assert "not a readable video clip" in error(f"video_hard:{tmp_path / 'broken'}")
    (tmp_path / "small").mkdir()
    write_clip(tmp_path / "small" / "tiny.mp4", CLIP_COLOURS[:1], size=(32, 32))
    assert "smaller than the 64x64 frame" in error(f"video_hard:{tmp_path / 'small'}")
    assert "color_hard.json does not exist" in error(f"color_hard:{tmp_path}")
    (tmp_path / "bad.json").write_text(json.dumps([{"skybox_rgb": [2, 0, 0]}]))
    assert "is not a list of dicts" in error(f"color_easy:{tmp_path / 'bad.json'}")
    assert "unknown distractor 'video:x'" in error("video:x")
    assert "names no path" in error("video_hard:")
    # A folder of clips with no <mode>/ inside is used as it is.
    env = make_env("dmc:cartpole-swingup", distractor=f"video_easy:{dmcgb_clips / 'video_hard'}")
    env.close()


def test_names_of_modes_with_files() -> None:
    assert distractor_name("video_hard") == "video_hard"
    assert distractor_name("clean") == "clean"
    assert distractor_name("video_hard:/data/dmcgb") == "video_hard@dmcgb"
    assert distractor_name("color_easy:/data/dmcgb/color_easy.json") == "color_easy@color_easy"
    assert parse_distractor("video_easy:~/clips").path == Path("~/clips").expanduser()
