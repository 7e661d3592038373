"""Pseudo-label a whole dataset with a trained predictor: ``saliency-rl label``.

Every frame gets a ``saliency`` map, stored as uint8 (T, H, W) per episode in the
dataset's extra-field files: episode files, and so the frames, are never rewritten. Every
episode is checked to open before a label is computed, and the labels are staged
(``Dataset.stage_field``) until every episode has one: only then are they moved into place
and declared in meta.json. So a failure leaves the dataset as it was, and a run killed (or
interrupted with Ctrl-C) resumes: episodes already labelled by the same predictor are
skipped. The field's provenance in meta.json names the predictor (its path and the hash of
its config and weights); labels of another predictor are replaced only when asked, and
only once the new ones are complete.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from tqdm.auto import tqdm

from saliency_rl.checkpoint import CONFIG_FILE, WEIGHTS_FILE
from saliency_rl.data.dataset import Dataset, FieldStaging
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
    source: SaliencyPredictor | None = None,
) -> dict:
    """Add the ``saliency`` field to every frame of ``dataset``.

    Args:
        dataset: a Dataset or its directory.
        predictor_dir: a checkpoint written by ``fit_predictor``.
        batch_size: frames per forward pass.
        device: ``auto``, ``cpu`` or ``cuda``.
        overwrite: replace labels written by another predictor (otherwise DatasetError).
        progress: show a progress bar (frames) on stderr.
        source: the predictor already loaded from ``predictor_dir`` (an attention module's,
            ``models.attention_saliency``); None loads a ``train-saliency`` predictor.

    Returns:
        ``{"episodes_labelled", "episodes_skipped", "frames_labelled", "seconds",
        "frames_per_second", "provenance"}``.
    """
    dataset = dataset if isinstance(dataset, Dataset) else Dataset.open(dataset)
    predictor = source or SaliencyPredictor.load(
        predictor_dir, device=device, batch_size=batch_size, env_spec=dataset.env_spec
    )
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
    _refuse_other_labels(dataset, provenance, overwrite)
    staging = dataset.stage_field(FIELD, provenance, same=("predictor_hash",))
    # Every episode this run reads, and every label it keeps, must open before anything is
    # computed or written.
    dataset.verify(extra_fields=[FIELD] if staging.in_place() else [])
    done = staging.done()
    todo = [e for e in range(dataset.num_episodes) if e not in done]
    lengths = dataset.episode_lengths
    start = time.perf_counter()
    if dataset.num_episodes and len(staging.in_place()) < dataset.num_episodes:
        _label_episodes(dataset, predictor, staging, todo, progress)
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


def _label_episodes(
    dataset: Dataset,
    predictor: SaliencyPredictor,
    staging: FieldStaging,
    todo: list[int],
    progress: bool,
) -> None:
    """Stage the maps of ``todo`` and commit; an error discards this run's staged maps."""
    bar = tqdm(
        total=int(dataset.episode_lengths[todo].sum()) if todo else 0,
        unit="frame",
        disable=not progress,
        desc="label",
        dynamic_ncols=True,
    )
    try:
        with bar:
            for episode in todo:
                rgb = dataset.episode(episode, ["rgb"])["rgb"]  # (T, C, H, W) uint8
                staging.write(episode, predictor.predict_uint8(rgb))  # (T, H, W) uint8
                bar.update(len(rgb))
        staging.commit()
    except Exception:
        # A failure (a damaged episode found while reading) leaves the dataset as it was;
        # an interruption (Ctrl-C, a kill) keeps the staged maps to resume from.
        staging.discard()
        raise


def _refuse_other_labels(dataset: Dataset, provenance: dict, overwrite: bool) -> None:
    """DatasetError if another predictor's labels are in place and ``overwrite`` is not set.

    With ``overwrite`` they stay in place until the new labels are complete.
    """
    present = dataset.num_episodes - len(dataset.episodes_lacking(FIELD))
    if not present or overwrite:
        return
    previous = dataset.meta["extra_fields"].get(FIELD, {}).get("provenance", {})
    if previous.get("predictor_hash") != provenance["predictor_hash"]:
        raise DatasetError(
            f"dataset {dataset.root} has saliency labels of another predictor "
            f"({previous.get('predictor', 'unknown')}) on {present} episodes: "
            "pass overwrite=True (--overwrite) to replace them"
        )
