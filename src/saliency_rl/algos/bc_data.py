"""What behaviour cloning learns from: demonstrations in memory, their split, their features.

``prepare_features`` loads the frozen encoder (and, in mode ``rgb+saliency``, the saliency
predictor ``resolve_saliency`` picks) and caches the dataset's features once;
``Demonstrations`` holds them with the actions and action-chunk targets, and cuts the
training windows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from saliency_rl.algos.bc import chunk_targets, num_val_episodes
from saliency_rl.data.dataset import Dataset
from saliency_rl.errors import CheckpointError, DatasetError
from saliency_rl.runs import RunError


class Demonstrations:
    """States, actions and chunk targets of a dataset's episodes, in memory.

    The last frame of an episode takes no action and is left out: an episode of T + 1
    frames gives T (state, action) pairs.
    """

    def __init__(self, dataset: Dataset, feature_field: str, use_proprio: bool, chunk: int) -> None:
        fields = [feature_field, "action"] + (["proprio"] if use_proprio else [])
        self.states: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []
        self.targets: list[np.ndarray] = []
        self.masks: list[np.ndarray] = []
        for episode in range(dataset.num_episodes):
            data = dataset.episode(episode, fields)
            parts = [data[feature_field]] + ([data["proprio"]] if use_proprio else [])
            states = np.concatenate(parts, axis=1).astype(np.float32)[:-1]  # (T, S)
            actions = data["action"].astype(np.float32)[:-1]  # (T, A)
            if len(actions) == 0:
                continue
            targets, mask = chunk_targets(actions, chunk)
            self.states.append(states)
            self.actions.append(actions)
            self.targets.append(targets)
            self.masks.append(mask)
        if not self.states:
            raise DatasetError(f"dataset {dataset.root} has no episode with an action")
        self.state_dim = self.states[0].shape[1]
        self.action_dim = self.actions[0].shape[1]

    def __len__(self) -> int:
        return len(self.states)

    def windows(
        self, starts: list[tuple[int, int]], length: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Windows of ``length`` steps from (episode, step) starts, zero-padded past the end.

        Returns states (B, W, S), targets (B, W, H, A) and mask (B, W, H); padded steps are
        masked out (the LSTM is causal, so they do not change the steps before them).
        """
        batch = len(starts)
        chunk = self.targets[0].shape[1]
        states = np.zeros((batch, length, self.state_dim), np.float32)
        targets = np.zeros((batch, length, chunk, self.action_dim), np.float32)
        mask = np.zeros((batch, length, chunk), bool)
        for i, (episode, start) in enumerate(starts):
            stop = min(start + length, len(self.states[episode]))
            n = stop - start
            states[i, :n] = self.states[episode][start:stop]
            targets[i, :n] = self.targets[episode][start:stop]
            mask[i, :n] = self.masks[episode][start:stop]
        return torch.from_numpy(states), torch.from_numpy(targets), torch.from_numpy(mask)


def split_episodes(count: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, validation) episode indices, a seeded split by episode."""
    order = np.random.default_rng(seed).permutation(count)
    held = num_val_episodes(count, fraction)
    return sorted(int(e) for e in order[held:]), sorted(int(e) for e in order[:held])


def _dataset_label_predictor(dataset: Dataset) -> dict | None:
    entry = dataset.meta["extra_fields"].get("saliency", {})
    return entry.get("provenance") if dataset.has_field("saliency") else None


def resolve_saliency(
    dataset: Dataset, predictor: str | Path | None
) -> tuple[str | None, str | None]:
    """(predictor checkpoint, saliency source for the cache) for mode ``rgb+saliency``.

    The dataset's ``saliency`` field is used when it was labelled by the given predictor
    (or, with no predictor given, by the predictor its provenance names, which then also
    runs at rollout time); a given predictor that did not label the dataset computes the
    maps itself, so training and rollouts see the same maps.
    """
    from saliency_rl.saliency.label import predictor_hash

    labels = _dataset_label_predictor(dataset)
    if predictor is not None:
        predictor = str(Path(predictor).resolve())
        if not Path(predictor).is_dir():
            raise CheckpointError(f"saliency predictor {predictor} does not exist")
        same = labels is not None and labels.get("predictor_hash") == predictor_hash(predictor)
        return predictor, "dataset" if same else "predictor"
    if labels is not None and labels.get("predictor") and Path(labels["predictor"]).is_dir():
        return str(labels["predictor"]), "dataset"
    raise RunError(
        "mode rgb+saliency needs a saliency predictor to run at rollout time: pass "
        "--predictor CKPT (saliency-rl train-saliency), or label the dataset with one first "
        f"(saliency-rl label {dataset.root} --predictor CKPT)"
    )


def load_encoder(checkpoint: str | Path, mode: str | None, predictor: str | None, device: Any):
    from saliency_rl.models.frozen_encoder import FrozenMultiMAEEncoder

    return FrozenMultiMAEEncoder.load(checkpoint, mode=mode, predictor=predictor, device=device)


def prepare_features(
    dataset: Dataset,
    encoder: str | Path,
    mode: str | None = None,
    predictor: str | Path | None = None,
    device: str | torch.device = "auto",
    progress: bool = True,
) -> tuple[Any, str, str | None, str | None]:
    """Load the frozen encoder (and predictor) and cache the dataset's features once.

    Returns:
        (encoder, feature field, predictor checkpoint or None, saliency source or None).
    """
    from saliency_rl.models.frozen_encoder import cache_dataset_features, default_feature_field

    frozen = load_encoder(encoder, mode, None, device)
    source = None
    if frozen.needs_saliency:
        from saliency_rl.models.attention_saliency import load_saliency_source

        predictor, source = resolve_saliency(dataset, predictor)
        frozen.predictor = load_saliency_source(
            predictor, device=frozen.device, env_spec=dataset.env_spec
        )
    else:
        predictor = None  # the other modes never look at saliency
    if tuple(dataset.image_size) != frozen.image_size:
        raise DatasetError(
            f"dataset {dataset.root} has {dataset.image_size[0]}x{dataset.image_size[1]} frames; "
            f"the encoder was pretrained on {frozen.image_size[0]}x{frozen.image_size[1]}"
        )
    # Maps the predictor computes itself are another source than the dataset's labels.
    field = (default_feature_field(frozen) + ("_pred" if source == "predictor" else ""))[:64]
    field = cache_dataset_features(
        dataset, frozen, name=field, saliency=source or "auto", progress=progress
    )
    return frozen, field, predictor, source
