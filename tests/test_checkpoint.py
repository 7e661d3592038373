"""Checkpoints: config.json + model.safetensors, written atomically, read back exactly."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from saliency_rl.checkpoint import (
    is_checkpoint,
    load_checkpoint,
    load_training_state,
    read_config,
    read_module_config,
    save_checkpoint,
)
from saliency_rl.errors import CheckpointError


def small_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))


def test_round_trip_with_training_state(tmp_path):
    model = small_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(5, 3)).sum().backward()
    optimizer.step()
    state = {"optimizer": optimizer.state_dict(), "step": 7, "rng": torch.get_rng_state()}
    path = save_checkpoint(
        tmp_path / "ckpt", {"model": "mlp", "sizes": [3, 4]}, model.state_dict(), state
    )
    assert is_checkpoint(path)
    assert json.loads((path / "config.json").read_text()) == {"model": "mlp", "sizes": [3, 4]}

    config, weights = load_checkpoint(path)
    assert config == {"model": "mlp", "sizes": [3, 4]}
    for name, tensor in model.state_dict().items():
        assert torch.equal(weights[name], tensor)
    restored = load_training_state(path)
    assert restored["step"] == 7 and torch.equal(restored["rng"], state["rng"])
    fresh = torch.optim.AdamW(small_model().parameters(), lr=1e-3)
    fresh.load_state_dict(restored["optimizer"])  # int keys and nested groups survive
    assert set(fresh.state_dict()["state"]) == set(optimizer.state_dict()["state"])
    assert load_training_state(save_checkpoint(tmp_path / "bare", {}, model.state_dict())) is None


def test_numpy_values_in_a_training_state_come_back_as_tensors_and_numbers(tmp_path):
    emulators = {"ram": np.arange(6, dtype=np.uint8).reshape(2, 3)[:, ::2], "lives": np.int64(3)}
    path = save_checkpoint(tmp_path / "ckpt", {}, small_model().state_dict(), {"env": emulators})
    restored = load_training_state(path)["env"]
    assert torch.equal(restored["ram"], torch.tensor([[0, 2], [3, 5]], dtype=torch.uint8))
    assert restored["lives"] == 3 and isinstance(restored["lives"], int)


def test_replaces_a_checkpoint_but_never_other_directories(tmp_path):
    model = small_model()
    path = save_checkpoint(tmp_path / "ckpt", {"version": 1}, model.state_dict())
    save_checkpoint(path, {"version": 2}, model.state_dict())
    assert load_checkpoint(path)[0] == {"version": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no temporary left

    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="neither an empty directory nor a checkpoint"):
        save_checkpoint(other, {}, model.state_dict())
    assert (other / "keep.txt").read_text() == "mine"


def test_failed_write_leaves_the_old_checkpoint(tmp_path):
    model = small_model()
    path = save_checkpoint(tmp_path / "ckpt", {"version": 1}, model.state_dict())
    with pytest.raises(CheckpointError, match="without pickling"):
        save_checkpoint(path, {"version": 2}, model.state_dict(), {"object": object()})
    assert load_checkpoint(path)[0] == {"version": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_missing_and_damaged_checkpoints_raise_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="not a directory"):
        load_checkpoint(tmp_path / "file")
    path = save_checkpoint(tmp_path / "ckpt", {}, small_model().state_dict())
    weights = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(weights[:40])
    with pytest.raises(CheckpointError, match="model.safetensors is damaged"):
        load_checkpoint(path)
    (path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        load_checkpoint(path)
    (path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json is damaged"):
        load_checkpoint(path)
    (path / "config.json").unlink()
    with pytest.raises(CheckpointError, match="no config.json"):
        load_checkpoint(path)


def test_reads_multimae_v1_configs_as_this_format(tmp_path):
    path = save_checkpoint(tmp_path / "ckpt", {}, small_model().state_dict())
    v1 = {"format": "saliency-rl-multimae", "format_version": 1, "model": {"dim": 8}, "step": 3}
    (path / "config.json").write_text(json.dumps(v1))
    config, _ = load_checkpoint(path)
    assert config == {"model": "MultiMAE", "kwargs": {"dim": 8}, "step": 3}
    assert read_config(path) == config
    with pytest.raises(CheckpointError, match="not a Transporter; make one with `make it`"):
        read_module_config(path, "Transporter", "make it")
    (path / "config.json").write_text(json.dumps({**v1, "format_version": 2}))
    with pytest.raises(CheckpointError, match="MultiMAE format version 2.*upgrade saliency-rl"):
        load_checkpoint(path)
