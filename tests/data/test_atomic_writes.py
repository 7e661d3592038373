"""A writer killed at the worst moment loses nothing already written and shows no half episode."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from saliency_rl.data.collect import collect
from saliency_rl.data.dataset import Dataset

WRITER = """
import sys
from saliency_rl.data.collect import collect
collect("fake:square", sys.argv[1], episodes=1000, seed=0, progress=False,
        env_options={"image_size": 256, "episode_length": 150})
"""


def run_writer_and_kill(path, kill_when):
    """Start a collecting process and SIGKILL it as soon as ``kill_when(path)`` holds."""
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], env=os.environ.copy())
    try:
        deadline = time.time() + 120
        while not kill_when(path):
            assert process.poll() is None, "the writer ended before it could be killed"
            assert time.time() < deadline, "the writer never reached the moment to kill it"
            time.sleep(0.001)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()


def temporary_files(path):
    folder = path / "episodes"
    return [p for p in folder.iterdir() if p.name.endswith(".tmp")] if folder.is_dir() else []


def finished_episodes(path):
    folder = path / "episodes"
    return [p for p in folder.iterdir() if p.name.endswith(".npz")] if folder.is_dir() else []


def test_writer_killed_during_a_file_write(tmp_path):
    path = tmp_path / "d"
    # Kill while the second episode's file is being written: its temporary file exists.
    run_writer_and_kill(path, lambda p: len(finished_episodes(p)) >= 1 and temporary_files(p))
    dataset = Dataset.open(path)
    assert dataset.num_episodes >= 1
    for e in range(dataset.num_episodes):
        episode = dataset.episode(e)
        assert len(episode["rgb"]) == 151 and episode["rgb"].shape[1:] == (3, 256, 256)
    # Collection resumes: the next episode gets the next number and the dataset stays whole.
    before = dataset.num_episodes
    collect("fake:square", path, episodes=1, seed=0, progress=False)
    resumed = Dataset.open(path)
    assert resumed.num_episodes == before + 1
    np.testing.assert_array_equal(resumed.episode(0)["rgb"], dataset.episode(0)["rgb"])


def test_writer_killed_mid_episode(tmp_path):
    path = tmp_path / "d"
    # Kill between writes, while an episode is still being rolled out in memory.
    run_writer_and_kill(path, lambda p: len(finished_episodes(p)) >= 1 and not temporary_files(p))
    dataset = Dataset.open(path)
    assert dataset.num_episodes >= 1
    assert all(len(dataset.episode(e)["rgb"]) == 151 for e in range(dataset.num_episodes))


def test_atomic_write_text_keeps_the_old_file_when_the_write_fails(tmp_path):
    from saliency_rl.data.atomic import atomic_write_text

    path = tmp_path / "results.md"
    atomic_write_text(path, "old ✓\n")
    assert path.read_text(encoding="utf-8") == "old ✓\n"
    with pytest.raises(AttributeError):
        atomic_write_text(path, None)  # fails inside the write, after the temporary file opened
    assert path.read_text(encoding="utf-8") == "old ✓\n"
    assert [p.name for p in tmp_path.iterdir()] == ["results.md"]  # no temporary file left
