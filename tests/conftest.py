"""Shared fixtures: small datasets made by the fake environment (logic tests only)."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from saliency_rl.data.collect import collect  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """One torch thread in every test. `make test` runs two pytest-xdist workers on two cores;
    more threads than cores make OpenMP threads spin against each other and the simulators,
    and the models in tests are too small to gain from threads. Session scope: the
    module-scoped fixtures that train tiny models run under it too."""
    torch.set_num_threads(1)


@pytest.fixture
def fake_dataset(tmp_path):
    """3 episodes of 20 env steps (21 frames each) of fake:square at 32x32."""
    return collect(
        "fake:square",
        tmp_path / "fake",
        episodes=3,
        seed=0,
        env_options={"image_size": 32, "episode_length": 20},
        progress=False,
    )


# ---------------------------------------------------------------------- SAC fixtures (issue 5)
# Shared by tests/algos/test_sac*.py (and any test needing a trained predictor or MultiMAE
# at the 64x64 frame size of the MuJoCo suites): each is built once per session, tiny.
@pytest.fixture(scope="session")
def fake_dataset_64(tmp_path_factory):
    """4 episodes of 12 steps of fake:square at 64x64, oracle-annotated, with oracle maps as
    the ``saliency`` field."""
    import numpy as np

    from saliency_rl.saliency.annotations import annotate_with_oracle
    from saliency_rl.saliency.maps import clicks_to_map, map_to_uint8

    dataset = collect(
        "fake:square",
        tmp_path_factory.mktemp("fake64") / "data",
        episodes=4,
        seed=0,
        env_options={"image_size": 64, "episode_length": 12},
        progress=False,
    )
    annotate_with_oracle(dataset, 12, seed=0)
    for e in range(dataset.num_episodes):
        points = dataset.episode(e, ["salient_points"])["salient_points"]
        maps = np.stack([map_to_uint8(clicks_to_map(p, 64, 64)) for p in points])
        dataset.write_field("saliency", e, maps)
    return dataset


@pytest.fixture(scope="session")
def tiny_predictor_64(fake_dataset_64, tmp_path_factory):
    """A tiny U-Net saliency predictor for 64x64 frames, fitted for 3 steps."""
    import torch

    from saliency_rl.saliency.fit import fit_predictor

    out = tmp_path_factory.mktemp("predictor64") / "predictor"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fit_predictor(
            fake_dataset_64, out, size="tiny", steps=3, batch_size=4, progress=False, device="cpu"
        )
    finally:
        torch.set_num_threads(threads)
    return out


@pytest.fixture(scope="session")
def tiny_multimae_64(fake_dataset_64, tmp_path_factory):
    """Tiny MultiMAE pretraining runs at 64x64, 2 steps each: {"rgb": run, "rgb+saliency": run}."""
    import torch

    from saliency_rl.pretrain.multimae_pretrain import pretrain_multimae

    root = tmp_path_factory.mktemp("multimae64")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runs = {}
        for name, modalities in (("rgb", ("rgb",)), ("rgb+saliency", ("rgb", "saliency"))):
            runs[name] = root / name.replace("+", "_")
            pretrain_multimae(
                fake_dataset_64,
                runs[name],
                modalities=modalities,
                steps=2,
                batch_size=4,
                model_size="tiny",
                device="cpu",
                progress=False,
            )
    finally:
        torch.set_num_threads(threads)
    return runs


# ---------------------------------------------------------------------- video clips
CLIP_COLOURS = [(230, 20, 20), (20, 230, 20), (20, 20, 230)]


def _write_clip(path, colours, size=(80, 72)) -> None:
    """An MP4 of flat-coloured frames with a bright square that moves; size (width, height)."""
    import imageio_ffmpeg

    width, height = size
    writer = imageio_ffmpeg.write_frames(
        str(path), size, fps=10, macro_block_size=1, quality=9, output_params=["-loglevel", "error"]
    )
    writer.send(None)
    for i, colour in enumerate(colours):
        frame = np.empty((height, width, 3), np.uint8)
        frame[:] = colour
        frame[10 + i : 30 + i, 10:30] = 255
        writer.send(np.ascontiguousarray(frame))
    writer.close()


@pytest.fixture(scope="session")
def write_clip():
    """``write_clip(path, colours, size=(w, h))``: a small MP4 made here, never downloaded."""
    return _write_clip


@pytest.fixture(scope="session")
def dmcgb_clips(tmp_path_factory):
    """A folder laid out as DMC-GB's data: video_hard/ (2 clips of 3 frames), video_easy/."""
    root = tmp_path_factory.mktemp("dmcgb")
    (root / "video_hard").mkdir()
    _write_clip(root / "video_hard" / "video0.mp4", CLIP_COLOURS)
    _write_clip(root / "video_hard" / "video1.mp4", CLIP_COLOURS[::-1])
    (root / "video_easy").mkdir()
    _write_clip(root / "video_easy" / "video0.mp4", CLIP_COLOURS[:2])
    return root
