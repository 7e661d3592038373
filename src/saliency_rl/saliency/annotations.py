"""Click annotations of a dataset: the source of truth for human (and oracle) saliency.

Stored under ``DATASET/annotations/``:

- ``selection.json``: the frames chosen for annotation (global frame indices), in order;
- ``frame_NNNNNNNN.json``: one file per annotated frame, written atomically, with every click
  in image pixel coordinates of the stored frame, its sigma, the annotator and the time.

A person's clicks (the web page) and the oracle's are stored the same way, so everything
downstream treats them alike. Maps are made from clicks by ``saliency.maps.clicks_to_map``.

The oracle never replaces a person's clicks unless asked to (``overwrite_people``), never
rewrites a file that already holds the clicks it would write, and reads every episode it
needs before it writes anything, so a damaged dataset is left as it was.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from saliency_rl.data.atomic import atomic_write_json
from saliency_rl.data.dataset import Dataset
from saliency_rl.errors import DatasetError
from saliency_rl.saliency.maps import click_sigma, clicks_to_map

FRAME_FILE = re.compile(r"^frame_(\d{8})\.json$")
ORACLE = "oracle"  # the annotator name of the oracle's clicks; any other name is a person

Uncertainty = Callable[[Sequence[int]], np.ndarray]
"""``frames -> scores``, higher where a predictor is less sure (``uncertainty.uncertainty_of``)."""


@dataclass(frozen=True)
class Click:
    """One click on a frame."""

    x: float
    """Horizontal position in pixels of the stored frame, 0 at the left edge."""
    y: float
    """Vertical position in pixels of the stored frame, 0 at the top edge."""
    sigma: float
    """Gaussian sigma in pixels of the stored frame."""
    annotator: str
    """Who clicked: a person's name, or ``oracle``."""
    time: str
    """ISO 8601 UTC time of the click."""


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


class AnnotationStore:
    """The annotations of one dataset."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.root = dataset.root / "annotations"

    # ------------------------------------------------------------------ selection
    def selection(self) -> list[int]:
        """The frames chosen for annotation, in order (empty if none yet)."""
        path = self.root / "selection.json"
        if not path.exists():
            return []
        try:
            frames = json.loads(path.read_text())["frames"]
            return [int(f) for f in frames]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise DatasetError(
                f"{path} is damaged ({error}); delete it to choose frames anew"
            ) from None

    def select(
        self,
        count: int,
        seed: int = 0,
        suggest: bool = False,
        uncertainty: Uncertainty | None = None,
    ) -> list[int]:
        """Choose ``count`` frames, spread over the dataset (or, with ``suggest``, the frames
        that cover it best, or that a predictor is least sure about), keeping any earlier
        selection; ``selection.json`` is written only when the selection grows."""
        chosen = self.plan_selection(count, seed, suggest, uncertainty)
        if len(chosen) > len(self.selection()):
            self.write_selection(chosen, seed)
        return chosen

    def plan_selection(
        self,
        count: int,
        seed: int = 0,
        suggest: bool = False,
        uncertainty: Uncertainty | None = None,
    ) -> list[int]:
        """The frames ``select`` would choose, without writing anything.

        Frames are drawn one per equal slice of the global frame order (so every part of
        every episode is represented), at a seeded random position within the slice. With
        ``suggest`` they are the greedy k-center cover of the frames instead (see
        :func:`suggest_frames`): each next frame the one least like every frame chosen so
        far, so that few clicks show the predictor every kind of frame (poses, positions);
        given ``uncertainty`` (a predictor exists), the least sure of those least alike.
        """
        total = self.dataset.num_frames
        if count < 1:
            raise DatasetError(f"the number of frames to annotate must be >= 1, got {count}")
        if count > total:
            raise DatasetError(f"cannot select {count} frames: the dataset has only {total}")
        chosen = self.selection()
        outside = [f for f in chosen if not 0 <= f < total]
        if outside:
            raise DatasetError(
                f"{self.root / 'selection.json'} names frame {outside[0]}, but the dataset has "
                f"{total} frames (0..{total - 1}); delete it to choose frames anew"
            )
        if len(chosen) >= count:
            return chosen[:count]
        if suggest:
            return suggest_frames(self.dataset, count, chosen, uncertainty, seed)
        rng = np.random.default_rng(seed)
        edges = np.linspace(0, total, count + 1).astype(np.int64)
        candidates = [
            int(rng.integers(lo, max(hi, lo + 1)))
            for lo, hi in zip(edges[:-1], edges[1:], strict=True)
        ]
        taken = set(chosen)
        for frame in candidates + [int(f) for f in rng.permutation(total)]:
            if len(chosen) == count:
                break
            if frame not in taken:
                chosen.append(frame)
                taken.add(frame)
        return chosen

    def write_selection(self, frames: Sequence[int], seed: int) -> None:
        """Store the selection (atomically)."""
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            self.root / "selection.json",
            {"frames": [int(f) for f in frames], "seed": seed, "updated": now()},
        )

    # ------------------------------------------------------------------ clicks
    def _path(self, frame: int) -> Path:
        return self.root / f"frame_{frame:08d}.json"

    def has_annotation(self, frame: int) -> bool:
        """Whether the frame has an annotation file (possibly with no clicks)."""
        return self._path(frame).is_file()

    def clicks(self, frame: int) -> list[Click]:
        """The clicks stored for a frame (empty if none)."""
        path = self._path(frame)
        if not path.exists():
            return []
        try:
            record = json.loads(path.read_text())
            return [Click(**c) for c in record["clicks"]]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise DatasetError(f"annotation file {path} is damaged ({error})") from None

    def save(self, frame: int, clicks: Sequence[Click]) -> None:
        """Replace the clicks of one frame, atomically; DatasetError on a bad frame or position."""
        if not 0 <= frame < self.dataset.num_frames:
            raise DatasetError(
                f"frame {frame} does not exist: the dataset has {self.dataset.num_frames} frames"
            )
        height, width = self.dataset.image_size
        for click in clicks:
            if not (0 <= click.x < width and 0 <= click.y < height):
                raise DatasetError(
                    f"click ({click.x}, {click.y}) is outside the {width}x{height} frame {frame}"
                )
            if not click.sigma > 0:
                raise DatasetError(f"click sigma must be > 0, got {click.sigma}")
        episode, step = self.dataset.locate(frame)
        self.root.mkdir(parents=True, exist_ok=True)
        record = {
            "frame": frame,
            "episode": episode,
            "step": step,
            "image_size": [height, width],
            "clicks": [asdict(c) for c in clicks],
            "updated": now(),
        }
        atomic_write_json(self._path(frame), record)

    def delete(self, frame: int) -> None:
        """Forget a frame's annotation (a cleared frame); nothing happens if it has none.

        An annotation with no clicks is kept by ``save``: the oracle stores one for a frame
        whose salient bodies are all out of view, meaning "nothing to look at here".
        """
        self._path(frame).unlink(missing_ok=True)

    def annotated(self) -> list[int]:
        """Frames with at least one click file, sorted."""
        if not self.root.is_dir():
            return []
        frames = []
        for path in self.root.iterdir():
            match = FRAME_FILE.match(path.name)
            if match:
                frames.append(int(match.group(1)))
        return sorted(frames)

    def saliency_map(self, frame: int) -> np.ndarray:
        """float32 (H, W) map of a frame's clicks, peak 1 (zeros if it has none)."""
        height, width = self.dataset.image_size
        clicks = self.clicks(frame)
        points = np.array([[c.x, c.y] for c in clicks], dtype=np.float64).reshape(-1, 2)
        sigmas = np.array([c.sigma for c in clicks], dtype=np.float64)
        return clicks_to_map(points, height, width, sigmas if len(clicks) else None)


SUGGEST_SIZE = 8
"""Frames are compared as SUGGEST_SIZE x SUGGEST_SIZE area averages of each channel."""


def frame_features(dataset: Dataset) -> np.ndarray:
    """Every frame as a cheap feature vector, (F, C * SUGGEST_SIZE²) float32 in [0, 1]:
    its channels area-averaged to SUGGEST_SIZE x SUGGEST_SIZE (bodies' positions and poses
    show; noise and texture do not)."""
    rows = []
    for episode in range(dataset.num_episodes):
        rgb = dataset.episode(episode, ["rgb"])["rgb"]  # (T, C, H, W) uint8
        t, c, h, w = rgb.shape
        cells = rgb[:, :, : h - h % SUGGEST_SIZE, : w - w % SUGGEST_SIZE].reshape(
            t, c, SUGGEST_SIZE, h // SUGGEST_SIZE, SUGGEST_SIZE, w // SUGGEST_SIZE
        )
        rows.append((cells.mean(axis=(3, 5), dtype=np.float32) / 255.0).reshape(t, -1))
    return np.concatenate(rows)


UNCERTAINTY_CANDIDATES = 2000
"""With a predictor, new frames are drawn from at most this many (a seeded random subset of
the frames not chosen), so suggesting does not predict a whole large dataset."""


def suggest_frames(
    dataset: Dataset,
    count: int,
    chosen: Sequence[int] = (),
    uncertainty: Uncertainty | None = None,
    seed: int = 0,
) -> list[int]:
    """``chosen`` extended to ``count`` frames by greedy k-center on :func:`frame_features`:
    each next frame is the one farthest from its nearest chosen frame (the first, with none
    chosen, the frame nearest the dataset's mean frame).

    With ``uncertainty`` (a predictor exists), each next frame is instead the candidate with
    the largest uncertainty x distance to its nearest chosen frame: the predictor's least sure
    frame, but not a near copy of one already chosen (consecutive frames of an episode are
    about equally uncertain). Candidates are :data:`UNCERTAINTY_CANDIDATES` frames drawn with
    ``seed``. Deterministic for a seed."""
    features = frame_features(dataset)
    chosen = [int(f) for f in chosen]
    if uncertainty is not None:
        return _suggest_uncertain(features, count, chosen, uncertainty, seed)
    if not chosen:
        chosen = [int(np.argmin(((features - features.mean(axis=0)) ** 2).sum(axis=1)))]
    nearest = np.full(len(features), np.inf, np.float32)
    for frame in chosen:
        nearest = np.minimum(nearest, ((features - features[frame]) ** 2).sum(axis=1))
    while len(chosen) < count:
        frame = int(np.argmax(nearest))
        chosen.append(frame)
        nearest = np.minimum(nearest, ((features - features[frame]) ** 2).sum(axis=1))
    return chosen


def _suggest_uncertain(
    features: np.ndarray, count: int, chosen: list[int], uncertainty: Uncertainty, seed: int
) -> list[int]:
    free = np.setdiff1d(np.arange(len(features)), np.array(chosen, dtype=np.int64))
    size = max(UNCERTAINTY_CANDIDATES, count - len(chosen))
    if len(free) > size:
        free = np.sort(np.random.default_rng(seed).choice(free, size=size, replace=False))
    scores = np.asarray(uncertainty(free.tolist()), dtype=np.float64)
    if scores.shape != free.shape:
        raise ValueError(f"uncertainty gave {scores.shape} scores for {len(free)} frames")
    nearest = np.full(len(free), np.inf)
    for frame in chosen:
        nearest = np.minimum(nearest, ((features[free] - features[frame]) ** 2).sum(axis=1))
    taken = np.zeros(len(free), bool)
    while len(chosen) < count:
        # With nothing chosen yet every distance is infinite: the least sure frame comes first.
        gain = scores if not chosen else scores * nearest
        gain = np.where(taken, -np.inf, gain)
        i = int(np.argmax(gain))
        taken[i] = True
        chosen.append(int(free[i]))
        nearest = np.minimum(nearest, ((features[free] - features[free[i]]) ** 2).sum(axis=1))
    return chosen


def is_persons(clicks: Sequence[Click]) -> bool:
    """Whether any of the clicks was made by a person (an annotator other than the oracle)."""
    return any(c.annotator != ORACLE for c in clicks)


@dataclass(frozen=True)
class OracleReport:
    """What ``annotate_with_oracle`` did with each selected frame."""

    frames: list[int]
    """The selected frames, in selection order."""
    written: list[int]
    """Frames whose oracle clicks were written (new, or different from those stored)."""
    unchanged: list[int]
    """Frames that already held exactly these oracle clicks: their files were not rewritten."""
    kept: list[int]
    """Frames a person annotated, left untouched."""
    replaced: list[int]
    """Frames a person annotated whose clicks were replaced (only with ``overwrite_people``)."""


def annotate_with_oracle(
    dataset: Dataset,
    count: int,
    seed: int = 0,
    *,
    overwrite_people: bool = False,
    suggest: bool = False,
) -> OracleReport:
    """Click the simulator's salient points on ``count`` selected frames, as a person would.

    Points outside the frame (or hidden behind the camera) are not clicked; a frame with no
    visible point gets an annotation with no clicks ("nothing to look at here").

    Args:
        dataset: the dataset to annotate; it must record oracle salient points.
        count: frames to annotate (the earlier selection is kept and extended).
        seed: seed of a new selection.
        overwrite_people: replace the clicks of frames a person annotated; otherwise those
            frames are kept as they are.
        suggest: choose new frames by coverage (``AnnotationStore.plan_selection``).

    Raises:
        DatasetError: the dataset records no salient points (e.g. Atari), an episode the
            oracle needs cannot be read, or an annotation file is damaged. Nothing has been
            written then: every episode and annotation is read before the first write.
    """
    _check_has_salient_points(dataset)
    store = AnnotationStore(dataset)
    frames = store.plan_selection(count, seed, suggest)
    points = _salient_points(dataset, frames)
    height, width = dataset.image_size
    sigma = click_sigma(height, width)
    stamp = now()
    todo: dict[int, list[Click]] = {}
    written, unchanged, kept, replaced = [], [], [], []
    for frame in frames:
        new = [Click(x, y, sigma, ORACLE, stamp) for x, y in _visible(points[frame], height, width)]
        old = store.clicks(frame) if store.has_annotation(frame) else None
        if old is not None and is_persons(old) and not overwrite_people:
            kept.append(frame)
        elif old is not None and _same_clicks(old, new):
            unchanged.append(frame)  # rewriting would only change the time stamps
        else:
            (replaced if old is not None and is_persons(old) else written).append(frame)
            todo[frame] = new
    if len(frames) > len(store.selection()):
        store.write_selection(frames, seed)
    for frame, clicks in todo.items():
        store.save(frame, clicks)
    return OracleReport(frames, written, unchanged, kept, replaced)


def _check_has_salient_points(dataset: Dataset) -> None:
    spec = dataset.fields.get("salient_points")
    if spec is None:
        raise DatasetError(
            f"dataset {dataset.root} has no salient_points field: the oracle has nothing to "
            f"click; annotate it in the web page (`saliency-rl annotate {dataset.root}`)"
        )
    if spec.shape[:1] == (0,):
        # Atari records (0, 2) points: the emulator knows no task-relevant bodies.
        raise DatasetError(
            f"{dataset.env_spec} has no oracle salient points (dataset {dataset.root} records "
            f"salient_points of shape {tuple(spec.shape)}): click the frames yourself in the web "
            f"page (`saliency-rl annotate {dataset.root}`), or learn attention without clicks "
            f"(`saliency-rl pretrain-attention {dataset.root}`)"
        )


def _salient_points(dataset: Dataset, frames: Sequence[int]) -> dict[int, np.ndarray]:
    """Each frame's salient points (P, 2), reading every episode needed before anything is
    written; DatasetError naming the damaged episode otherwise."""
    by_episode: dict[int, list[tuple[int, int]]] = {}
    for frame in frames:
        episode, step = dataset.locate(frame)
        by_episode.setdefault(episode, []).append((frame, step))
    points = {}
    for episode, wanted in sorted(by_episode.items()):
        try:
            stored = dataset.episode(episode, ["salient_points"])["salient_points"]
        except DatasetError as error:
            raise DatasetError(f"{error}; no annotation was written") from None
        for frame, step in wanted:
            points[frame] = stored[step]
    return points


def _visible(points: np.ndarray, height: int, width: int) -> list[tuple[float, float]]:
    """The (x, y) of the points that fall inside the frame (finite, not behind the camera)."""
    inside = np.isfinite(points).all(axis=1)
    inside &= (
        (points[:, 0] >= 0) & (points[:, 0] < width) & (points[:, 1] >= 0) & (points[:, 1] < height)
    )
    return [(float(x), float(y)) for x, y in points[inside]]


def _same_clicks(old: Sequence[Click], new: Sequence[Click]) -> bool:
    """Same positions, sigmas and annotators in the same order (times aside)."""

    def key(clicks: Sequence[Click]) -> list[tuple]:
        return [(c.x, c.y, c.sigma, c.annotator) for c in clicks]

    return key(old) == key(new)
