"""Shared fixtures of the A2C tests: one torch thread, tiny Atari datasets and attention checkpoints."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("ale_py")


@pytest.fixture(scope="session")
def atari_datasets(tmp_path_factory):
    """40 random-policy frames of MsPacman and of Pong: {game: dataset directory}."""
    from saliency_rl.data.collect import collect

    root = tmp_path_factory.mktemp("atari_data")
    for game in ("MsPacman", "Pong"):
        collect(f"atari:{game}", root / game, frames=40, seed=0, progress=False)
    return {game: root / game for game in ("MsPacman", "Pong")}


@pytest.fixture(scope="session")
def attention_checkpoints(atari_datasets, tmp_path_factory):
    """Tiny pretrain-attention runs through the CLI: {"MsPacman", "Pong", "both": directory}."""
    from saliency_rl.cli import main

    root = tmp_path_factory.mktemp("attention_ckpts")
    sources = {
        "MsPacman": [atari_datasets["MsPacman"]],
        "Pong": [atari_datasets["Pong"]],
        "both": [atari_datasets["MsPacman"], atari_datasets["Pong"]],
    }
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name, datasets in sources.items():
            args = ["pretrain-attention", *map(str, datasets), "--out", str(root / name)]
            args += ["--steps", "2", "--batch-size", "4", "--log-every", "1", "--no-progress"]
            assert main(args) == 0
    finally:
        torch.set_num_threads(threads)
    return {name: root / name for name in sources}
