"""Checkpoints: a directory with ``config.json`` and ``model.safetensors``, never pickles.

Layout (../shared/DESIGN.md, as LeRobot's)::

    CHECKPOINT/
      config.json                    what to build: the model's name and keyword arguments, ...
      model.safetensors              the weights (a flat name -> tensor mapping)
      training_state/                optional, for an exact resume:
        state.json                   nested counters, hyper-parameters, RNG seeds, ... with
                                     {"__tensor__": key} where a tensor was
        state.safetensors            those tensors (optimizer moments, RNG states)

:func:`read_config` and :func:`load_training_state` also read MultiMAE's first format, the one
it wrote before it moved onto this one (see "Older formats" below).

A checkpoint is written whole into a hidden temporary directory beside the target and
renamed into place, so a reader sees the old checkpoint or the new one, never a mix; a
process killed mid-write leaves at most a hidden ``.*.tmp`` directory. Replacing an existing
checkpoint moves the old one aside first (a kill in that instant leaves it in the hidden
``.NAME.old.tmp`` directory). A directory that exists and is not a checkpoint is never
replaced.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from saliency_rl.data.atomic import TMP_SUFFIX, fsync_path, public_mode
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
                fsync_path(path)
        _swap_in(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def read_config(directory: str | Path) -> dict[str, Any]:
    """A checkpoint's config.json (an older format's read as this one's); CheckpointError
    naming what is wrong."""
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
    return _upgrade_multimae_v1_config(config, directory / CONFIG_FILE)


def read_module_config(directory: str | Path, model_name: str, how_to_make: str) -> dict[str, Any]:
    """The config.json of a checkpoint that must hold ``model_name``; CheckpointError naming
    what is wrong, and ``how_to_make`` (a command) when it holds another model."""
    config = read_config(directory)
    if config.get("model") != model_name:
        raise CheckpointError(
            f"{directory} holds a {config.get('model', 'unknown')!r} checkpoint, not a "
            f"{model_name}; make one with `{how_to_make}`"
        )
    return config


def load_checkpoint(
    directory: str | Path, device: str | torch.device = "cpu"
) -> tuple[dict, dict[str, torch.Tensor]]:
    """Read ``(config, state_dict)`` of a checkpoint; CheckpointError naming what is wrong."""
    config = read_config(directory)
    return config, _read_tensors(Path(directory) / WEIGHTS_FILE, device)


def save_module_checkpoint(
    module: nn.Module,
    directory: str | Path,
    provenance: dict[str, Any],
    training_state: dict[str, Any] | None = None,
) -> Path:
    """Write a module that describes itself (``module.config()``: its ``model`` name and
    ``kwargs``) with ``provenance`` (what it was trained on); read it back with
    :func:`load_module_checkpoint`."""
    config = {**module.config(), "provenance": provenance}
    return save_checkpoint(directory, config, module.state_dict(), training_state)


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
    config = read_module_config(directory, model_name, how_to_make)
    state_dict = _read_tensors(Path(directory) / WEIGHTS_FILE, device)
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
        if _is_multimae_v1(Path(directory)):
            return _multimae_v1_training_state(encoded, tensors)
        return _decode(encoded, tensors)
    except KeyError as error:
        raise CheckpointError(
            f"training state in {state_dir} is damaged: {error} is missing"
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
    fsync_path(directory.parent)


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
    """Nested value -> JSON value; tensors (and NumPy arrays, as tensors) go into
    ``tensors`` under a fresh key; NumPy scalars become Python numbers."""
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    elif isinstance(value, np.generic):
        value = value.item()
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


# ---------------------------------------------------------------------- older formats
# MultiMAE wrote a format of its own before it moved onto this one (tests/fixtures/multimae_v1
# holds checkpoints and a pretraining run in it). Its config.json is
# {"format": "saliency-rl-multimae", "format_version": 1, "model": {MultiMAEConfig}, ...extra};
# its training_state/state.json holds the step, the optimizer's param groups and state keys,
# and Python's and NumPy's RNG states, beside state.safetensors with "torch_rng",
# "cuda_rng.I" and "optimizer.I.KEY". Both are read as this format's, so a v1 checkpoint
# loads, and a v1 pretraining resumes, with the code of today.
MULTIMAE_V1_FORMAT = "saliency-rl-multimae"
_MULTIMAE = "MultiMAE"  # models.multimae.MODEL_NAME, a layer above


def _is_multimae_v1(directory: Path) -> bool:
    path = directory / CONFIG_FILE
    if not path.is_file():
        return False
    config = _read_json(path, what="checkpoint config")
    return isinstance(config, dict) and config.get("format") == MULTIMAE_V1_FORMAT


def _upgrade_multimae_v1_config(config: dict[str, Any], path: Path) -> dict[str, Any]:
    """A v1 MultiMAE config.json as ``{"model": "MultiMAE", "kwargs": {MultiMAEConfig},
    ...extra}``; any other config unchanged."""
    if config.get("format") != MULTIMAE_V1_FORMAT:
        return config
    if config.get("format_version") != 1 or not isinstance(config.get("model"), dict):
        raise CheckpointError(
            f"{path} has MultiMAE format version {config.get('format_version')!r}; this "
            "saliency-rl reads version 1 and the checkpoints it writes itself: upgrade saliency-rl"
        )
    extra = {k: v for k, v in config.items() if k not in ("format", "format_version", "model")}
    return {"model": _MULTIMAE, "kwargs": config["model"], **extra}


def _multimae_v1_training_state(
    state: dict[str, Any], tensors: Mapping[str, torch.Tensor]
) -> dict[str, Any]:
    """A v1 MultiMAE training state as the one its pretraining writes now: ``step``,
    ``optimizer`` (a ``state_dict``), ``torch_rng``, ``cuda_rng`` (one state a device) and the
    Python and NumPy RNG states v1 also kept (``python_rng``, ``numpy_rng``: as stored)."""
    optimizer = {
        "state": {
            int(index): {key: tensors[f"optimizer.{index}.{key}"] for key in keys}
            for index, keys in state["optimizer_state_keys"].items()
        },
        "param_groups": state["optimizer_param_groups"],
    }
    cuda = sorted((k for k in tensors if k.startswith("cuda_rng.")), key=lambda k: int(k[9:]))
    return {
        "step": state["step"],
        "optimizer": optimizer,
        "torch_rng": tensors["torch_rng"],
        "cuda_rng": [tensors[k] for k in cuda],
        "python_rng": state["python_random"],
        "numpy_rng": state["numpy_random"],
    }
