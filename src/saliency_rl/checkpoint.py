"""Checkpoints: a directory with ``config.json`` and ``model.safetensors``, never pickles.

Layout (../shared/DESIGN.md, as LeRobot's)::

    CHECKPOINT/
      config.json                    what to build: the model's name and keyword arguments, ...
      model.safetensors              the weights (a flat name -> tensor mapping)
      training_state/                optional, for an exact resume:
        state.json                   nested counters, hyper-parameters, RNG seeds, ... with
                                     {"__tensor__": key} where a tensor was
        state.safetensors            those tensors (optimizer moments, RNG states)

A checkpoint is written whole into a hidden temporary directory beside the target and
renamed into place, so a reader sees the old checkpoint or the new one, never a mix; a
process killed mid-write leaves at most a hidden ``.*.tmp`` directory. Replacing an existing
checkpoint moves the old one aside first (a kill in that instant leaves it in the hidden
``.NAME.old.tmp`` directory). A directory that exists and is not a checkpoint is never
replaced.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from saliency_rl.data.atomic import TMP_SUFFIX, public_mode
from saliency_rl.errors import CheckpointError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TRAINING_STATE_DIR = "training_state"
_TENSOR = "__tensor__"
_ITEMS = "__items__"  # a dict whose keys are not all strings (optimizer states use ints)


def is_checkpoint(directory: str | Path) -> bool:
    """Whether ``directory`` holds a checkpoint (its config and weights files)."""
    directory = Path(directory)
    return (directory / CONFIG_FILE).is_file() and (directory / WEIGHTS_FILE).is_file()


def save_checkpoint(
    directory: str | Path,
    config: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    training_state: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically, replacing an existing checkpoint at ``directory``.

    Args:
        directory: the checkpoint directory; its parent is created if needed. If it exists
            it must be an empty directory or a checkpoint.
        config: JSON-serialisable description of the model (what to build).
        state_dict: the model's weights, e.g. ``model.state_dict()``.
        training_state: optional nested dicts / lists of JSON values and tensors (e.g.
            ``{"optimizer": opt.state_dict(), "step": 100, "rng": torch.get_rng_state()}``),
            stored without pickling for an exact resume.

    Returns:
        The checkpoint directory.
    """
    directory = Path(directory)
    if directory.exists() and not (directory.is_dir() and _replaceable(directory)):
        raise CheckpointError(
            f"cannot write a checkpoint to {directory}: it exists and is neither an empty "
            "directory nor a checkpoint; choose another directory"
        )
    try:
        config_text = json.dumps(config, indent=2) + "\n"
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"checkpoint config is not JSON-serialisable: {error}") from None
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(
        tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.", suffix=TMP_SUFFIX)
    )
    try:
        (tmp / CONFIG_FILE).write_text(config_text)
        save_file(_contiguous(state_dict), str(tmp / WEIGHTS_FILE))
        if training_state is not None:
            tensors: dict[str, torch.Tensor] = {}
            encoded = _encode(training_state, tensors)
            (tmp / TRAINING_STATE_DIR).mkdir()
            (tmp / TRAINING_STATE_DIR / "state.json").write_text(json.dumps(encoded) + "\n")
            save_file(_contiguous(tensors), str(tmp / TRAINING_STATE_DIR / "state.safetensors"))
        for path in [tmp, *tmp.rglob("*")]:
            # mkdtemp makes the directory 0700 and safetensors writes 0600: give both the
            # modes the umask allows, so others may read a checkpoint when the user lets them.
            public_mode(path)
            if path.is_file():
                _fsync(path)
        _swap_in(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def load_checkpoint(
    directory: str | Path, device: str | torch.device = "cpu"
) -> tuple[dict, dict[str, torch.Tensor]]:
    """Read ``(config, state_dict)`` of a checkpoint; CheckpointError naming what is wrong."""
    directory = Path(directory)
    if not directory.exists():
        raise CheckpointError(f"checkpoint {directory} does not exist")
    if not directory.is_dir():
        raise CheckpointError(
            f"checkpoint {directory} is not a directory: a checkpoint is a directory "
            f"holding {CONFIG_FILE} and {WEIGHTS_FILE}"
        )
    config = _read_json(directory / CONFIG_FILE, what="checkpoint config")
    if not isinstance(config, dict):
        raise CheckpointError(f"{directory / CONFIG_FILE} is damaged: not a JSON object")
    state_dict = _read_tensors(directory / WEIGHTS_FILE, device)
    return config, state_dict


def load_module_checkpoint(
    directory: str | Path,
    model_name: str,
    build: Callable[..., nn.Module],
    how_to_make: str,
    device: str | torch.device = "cpu",
) -> tuple[nn.Module, dict]:
    """Read a checkpoint whose config names ``model_name``: ``(build(**config["kwargs"]), config)``.

    Args:
        build: makes the empty module from the config's ``kwargs``.
        how_to_make: the command that makes such a checkpoint, named in the error.

    Raises:
        CheckpointError: the directory is missing, damaged, or holds another model.
    """
    config, state_dict = load_checkpoint(directory, device)
    if config.get("model") != model_name:
        raise CheckpointError(
            f"{directory} holds a {config.get('model', 'unknown')!r} checkpoint, not a "
            f"{model_name}; make one with `{how_to_make}`"
        )
    module = build(**config.get("kwargs", {}))
    try:
        module.load_state_dict(state_dict)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise CheckpointError(f"{directory} does not fit {model_name}: {first}") from None
    return module.to(device), config


def load_training_state(
    directory: str | Path, device: str | torch.device = "cpu"
) -> dict[str, Any] | None:
    """The training state saved with a checkpoint, or None if it has none."""
    state_dir = Path(directory) / TRAINING_STATE_DIR
    if not state_dir.is_dir():
        return None
    encoded = _read_json(state_dir / "state.json", what="training state")
    tensors = _read_tensors(state_dir / "state.safetensors", device)
    try:
        return _decode(encoded, tensors)
    except KeyError as error:
        raise CheckpointError(
            f"training state in {state_dir} is damaged: tensor {error} is missing"
        ) from None


# ---------------------------------------------------------------------- internals
def _replaceable(directory: Path) -> bool:
    return is_checkpoint(directory) or not any(directory.iterdir())


def _swap_in(tmp: Path, directory: Path) -> None:
    """Rename ``tmp`` to ``directory``, moving an existing one aside first."""
    old = None
    if directory.exists():
        old = directory.parent / f".{directory.name}.old{TMP_SUFFIX}"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(directory, old)
    os.replace(tmp, directory)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    _fsync(directory.parent)


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _contiguous(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors stores contiguous, unshared memory; clone views and tied weights.
    return {name: t.detach().contiguous().clone() for name, t in tensors.items()}


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise CheckpointError(
            f"{path.parent} is not a complete checkpoint: it has no {path.name} ({what})"
        )
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path} is damaged: not valid JSON ({error})") from None


def _read_tensors(path: Path, device: str | torch.device) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{path.parent} is not a complete checkpoint: it has no {path.name}")
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path} is damaged and cannot be read ({error})") from None


def _encode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Nested value -> JSON value; tensors go into ``tensors`` under a fresh key."""
    if isinstance(value, torch.Tensor):
        key = str(len(tensors))
        tensors[key] = value
        return {_TENSOR: key}
    if isinstance(value, Mapping):
        if all(isinstance(k, str) for k in value) and _TENSOR not in value and _ITEMS not in value:
            return {k: _encode(v, tensors) for k, v in value.items()}
        return {_ITEMS: [[_encode(k, tensors), _encode(v, tensors)] for k, v in value.items()]}
    if isinstance(value, list | tuple):
        return [_encode(v, tensors) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise CheckpointError(
        f"training state holds a {type(value).__name__}, which is not stored without pickling: "
        "use tensors, numbers, strings, lists and dicts"
    )


def _decode(value: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if set(value) == {_TENSOR}:
            return tensors[value[_TENSOR]]
        if set(value) == {_ITEMS}:
            return {_decode(k, tensors): _decode(v, tensors) for k, v in value[_ITEMS]}
        return {k: _decode(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    return value
