"""The saliency predictor the annotation page shows, refitted in the background as a person clicks.

It starts from a checkpoint (``annotate --predictor CKPT``) or, without one, from the
predictor an earlier session refitted (``DATASET/predictors/live``, a checkpoint like
``train-saliency``'s, so ``label --predictor`` takes it too). Every ``RefitConfig.every``
newly annotated frames it fits a fresh small U-Net on all annotated frames
(``fit.fit_predictor``, no held-out frames: with a few frames every one is worth training
on) in a background thread, so requests never wait for it. One refit runs at a time; a
request while one runs queues exactly one more, which then sees every frame annotated so far.

A refit writes into a hidden temporary directory beside ``predictors/live``, is loaded back
from it (so a checkpoint that does not load is never swapped in), and only then replaces the
old directory by renames; a refit that fails or is killed leaves the last good predictor in
use and on disk, and its error in :meth:`LivePredictor.status`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from saliency_rl.checkpoint import is_checkpoint, read_config
from saliency_rl.data.atomic import TMP_SUFFIX, fsync_path
from saliency_rl.data.dataset import Dataset
from saliency_rl.errors import CheckpointError, SaliencyRLError
from saliency_rl.saliency.annotations import AnnotationStore
from saliency_rl.saliency.fit import fit_predictor
from saliency_rl.saliency.predictor import SaliencyPredictor

LIVE_DIR = Path("predictors") / "live"
"""Where, inside the dataset directory, the refitted predictor is kept."""


@dataclass(frozen=True)
class RefitConfig:
    """When and how the annotation page refits its predictor."""

    every: int = 5
    """Refit after this many newly annotated frames; 0: never (a given predictor stays)."""
    steps: int = 150
    """Optimiser steps of a refit: about 15 s for the small U-Net on 64x64 frames on two
    busy CPU cores, where ``train-saliency``'s 1500 take minutes."""
    size: str = "small"
    """U-Net size (``small``; ``tiny`` for tests)."""
    batch_size: int = 8
    """Augmented frames per step."""
    seed: int = 0
    """Seed of the weights, batches and augmentation of every refit."""
    device: str = "auto"
    """Where refits and predictions run: auto (CUDA if present), cpu or cuda."""

    def __post_init__(self) -> None:
        if self.every < 0 or self.steps < 1 or self.batch_size < 1:
            raise SaliencyRLError(
                f"refit every {self.every} frames with {self.steps} steps of batch "
                f"{self.batch_size} is not valid: give every >= 0 (0: off), steps and batch >= 1"
            )


class LivePredictor:
    """The current predictor of one dataset and its background refits.

    Args:
        dataset: the dataset being annotated (refits open their own copy: its episode cache
            is not thread-safe).
        checkpoint: a predictor to start from; None: ``DATASET/predictors/live`` when
            refits are on and an earlier session left one there, else none.
        refit: when and how to refit.

    Raises:
        CheckpointError: ``checkpoint`` is not a predictor, or it was trained on frames of
            another size or channel count than the dataset's.
    """

    def __init__(
        self,
        dataset: Dataset,
        checkpoint: str | Path | None = None,
        refit: RefitConfig | None = None,
    ) -> None:
        self.root = dataset.root
        self.live_dir = dataset.root / LIVE_DIR
        self.refit = refit or RefitConfig()
        self.image_size = tuple(dataset.image_size)
        self.channels = dataset.fields["rgb"].shape[0]
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._predictor: SaliencyPredictor | None = None
        self._version = 0
        self._frames: int | None = None
        self._source: str | None = None
        self._error: str | None = None
        self._thread: threading.Thread | None = None
        self._queued = False
        self._refits = 0
        annotated = len(AnnotationStore(dataset).annotated())
        # Refit once this many frames are annotated (minus ``every``): the count the current
        # predictor reflects, or the count when the last refit was asked for.
        self._baseline = 0
        if checkpoint is not None:
            self._adopt(self._load(Path(checkpoint), dataset.env_spec), "checkpoint")
            self._baseline = annotated  # what it was fitted on is not this session's business
        elif self.refit.every and is_checkpoint(self.live_dir):
            try:
                self._adopt(self._load(self.live_dir, dataset.env_spec), "refit")
                self._baseline = self._frames or 0
            except (CheckpointError, OSError) as error:  # ours, damaged: refit anew
                self._error = f"the last refitted predictor did not load: {error}"

    # ------------------------------------------------------------------ the predictor
    def _load(self, directory: Path, env_spec: str | None = None) -> SaliencyPredictor:
        predictor = SaliencyPredictor.load(directory, self.refit.device, env_spec=env_spec)
        if predictor.image_size != self.image_size or predictor.in_channels != self.channels:
            h, w = predictor.image_size
            raise CheckpointError(
                f"predictor {directory} takes {predictor.in_channels}-channel {h}x{w} frames, "
                f"but the dataset's are {self.channels}-channel "
                f"{self.image_size[0]}x{self.image_size[1]}: give one trained on this dataset"
            )
        return predictor

    def _adopt(self, predictor: SaliencyPredictor, source: str) -> None:
        config = predictor.config
        fitted = config.get("train_frames"), config.get("holdout_frames")
        frames = sum(len(f) for f in fitted if isinstance(f, list)) or None
        self._predictor, self._source, self._frames = predictor, source, frames
        self._version += 1

    def current(self) -> tuple[int, SaliencyPredictor | None]:
        """(version, predictor): the version grows by one with every new predictor; 0: none."""
        with self._lock:
            return self._version, self._predictor

    def status(self) -> dict:
        """For ``/api/state``: ``state`` is ``fitting`` while a refit runs, else ``ready`` or
        ``none``; ``frames`` is how many annotated frames the predictor was fitted on (None
        when its checkpoint does not say); ``error`` the last refit's failure, if it failed."""
        with self._lock:
            busy = self._thread is not None
            return {
                "state": "fitting" if busy else ("ready" if self._predictor else "none"),
                "available": self._predictor is not None,
                "version": self._version,
                "frames": self._frames,
                "source": self._source,
                "error": self._error,
                "refit_every": self.refit.every,
                "refits": self._refits,
            }

    # ------------------------------------------------------------------ refits
    def annotated_changed(self, annotated: int) -> bool:
        """Tell it how many frames are annotated now; True when that asked for a refit."""
        with self._lock:
            due = self.refit.every > 0 and annotated - self._baseline >= self.refit.every
            if due:
                self._baseline = annotated
        if due:
            self.request_refit()
        return due

    def request_refit(self) -> None:
        """Refit now in the background, or once the running refit is done."""
        with self._lock:
            if self._thread is not None:
                self._queued = True
                return
            self._thread = threading.Thread(target=self._refit_loop, name="predictor-refit")
            self._thread.daemon = True  # Ctrl-C does not wait: the last good predictor stays
            self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no refit runs or is queued; False if ``timeout`` seconds passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._thread is None, timeout)

    def _refit_loop(self) -> None:
        while True:
            try:
                predictor = self._refit_once()
            except Exception as error:  # whatever failed, the last good predictor stays
                with self._lock:
                    self._error = f"{type(error).__name__}: {error}".splitlines()[0]
            else:
                with self._lock:
                    self._adopt(predictor, "refit")
                    self._error = None
                    self._refits += 1
            with self._lock:
                if not self._queued:
                    self._thread = None
                    self._idle.notify_all()
                    return
                self._queued = False

    def _refit_once(self) -> SaliencyPredictor:
        dataset = Dataset.open(self.root)
        self.live_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(
            tempfile.mkdtemp(
                dir=self.live_dir.parent, prefix=f".{self.live_dir.name}.", suffix=TMP_SUFFIX
            )
        )
        try:
            fit_predictor(
                dataset,
                tmp,
                model="unet",
                size=self.refit.size,
                steps=self.refit.steps,
                batch_size=self.refit.batch_size,
                seed=self.refit.seed,
                holdout_frames=[],
                device=self.refit.device,
                progress=False,
            )
            read_config(tmp)  # a checkpoint was written whole
            predictor = self._load(tmp)
            _swap_in(tmp, self.live_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return predictor


def _swap_in(tmp: Path, directory: Path) -> None:
    """Rename ``tmp`` to ``directory``, moving an existing one aside first (the pattern of
    ``checkpoint.save_checkpoint``: a kill in between leaves the old one in a hidden dir)."""
    old = directory.parent / f".{directory.name}.old{TMP_SUFFIX}"
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        os.replace(directory, old)
    os.replace(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)
    fsync_path(directory.parent)
