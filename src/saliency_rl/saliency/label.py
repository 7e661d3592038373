"""Pseudo-label a whole dataset with a trained predictor: ``saliency-rl label``.

Every frame gets a ``saliency`` map, stored as uint8 (T, H, W) per episode in the
dataset's extra-field files (``Dataset.write_field``): episode files, and so the frames,
are never rewritten. Each episode's file is written atomically, so labelling can be
killed at any time and resumed: episodes already labelled by the same predictor are
skipped. The field's provenance in meta.json names the predictor (its path and the hash
of its config and weights); labels of another predictor are replaced only when asked.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from tqdm.auto import tqdm

from saliency_rl.checkpoint import CONFIG_FILE, WEIGHTS_FILE
from saliency_rl.data.dataset import Dataset
from saliency_rl.errors import DatasetError
from saliency_rl.saliency.predictor import SaliencyPredictor

FIELD = "saliency"


def predictor_hash(checkpoint_dir: str | Path) -> str:
    """SHA-256 (hex, 16 digits) of a checkpoint's config and weights: which predictor it is."""
    digest = hashlib.sha256()
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        with open(Path(checkpoint_dir) / name, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def label_dataset(
    dataset: Dataset | str | Path,
    predictor_dir: str | Path,
    *,
    batch_size: int = 64,
    device: str = "auto",
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """Add the ``saliency`` field to every frame of ``dataset``.

    Args:
        dataset: a Dataset or its directory.
        predictor_dir: a checkpoint written by ``fit_predictor``.
        batch_size: frames per forward pass.
        device: ``auto``, ``cpu`` or ``cuda``.
        overwrite: replace labels written by another predictor (otherwise DatasetError).
        progress: show a progress bar (frames) on stderr.

    Returns:
        ``{"episodes_labelled", "episodes_skipped", "frames_labelled", "seconds",
        "frames_per_second", "provenance"}``.
    """
    dataset = dataset if isinstance(dataset, Dataset) else Dataset.open(dataset)
    predictor = SaliencyPredictor.load(predictor_dir, device=device, batch_size=batch_size)
    if tuple(dataset.image_size) != predictor.image_size:
        raise DatasetError(
            f"dataset {dataset.root} has {dataset.image_size[0]}x{dataset.image_size[1]} frames; "
            f"the predictor was trained on {predictor.image_size[0]}x{predictor.image_size[1]}"
        )
    provenance = {
        "predictor": str(Path(predictor_dir).resolve()),
        "predictor_hash": predictor_hash(predictor_dir),
        "model": predictor.config["model"],
    }
    done = _episodes_done(dataset, provenance, overwrite)
    todo = [e for e in range(dataset.num_episodes) if e not in done]
    lengths = dataset.episode_lengths
    start = time.perf_counter()
    bar = tqdm(
        total=int(lengths[todo].sum()) if todo else 0,
        unit="frame",
        disable=not progress,
        desc="label",
        dynamic_ncols=True,
    )
    with bar:
        for episode in todo:
            rgb = dataset.episode(episode, ["rgb"])["rgb"]  # (T, C, H, W) uint8
            maps = predictor.predict_uint8(rgb)  # (T, H, W) uint8
            dataset.write_field(FIELD, episode, maps, provenance)
            bar.update(len(rgb))
    seconds = time.perf_counter() - start
    frames = int(lengths[todo].sum()) if todo else 0
    return {
        "episodes_labelled": len(todo),
        "episodes_skipped": len(done),
        "frames_labelled": frames,
        "seconds": seconds,
        "frames_per_second": frames / seconds if frames and seconds > 0 else None,
        "provenance": provenance,
    }


def _episodes_done(dataset: Dataset, provenance: dict, overwrite: bool) -> set[int]:
    """Episodes already labelled by this predictor; clears another predictor's labels if asked.

    The field's provenance (meta.json) applies to every field file present: a new
    predictor's provenance is written with its first episode, after the old files are gone.
    """
    # Dataset has no public per-episode existence test for extra fields yet.
    paths = {e: dataset._field_path(FIELD, e) for e in range(dataset.num_episodes)}
    present = {e for e, path in paths.items() if path.exists()}
    if not present:
        return set()
    previous = dataset.meta["extra_fields"].get(FIELD, {}).get("provenance", {})
    if previous.get("predictor_hash") == provenance["predictor_hash"]:
        return present
    if not overwrite:
        raise DatasetError(
            f"dataset {dataset.root} has saliency labels of another predictor "
            f"({previous.get('predictor', 'unknown')}) on {len(present)} episodes: "
            "pass overwrite=True (--overwrite) to replace them"
        )
    for episode in sorted(present):
        paths[episode].unlink()
    return set()
