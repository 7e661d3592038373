"""Click annotations of a dataset: the source of truth for human (and oracle) saliency.

Stored under ``DATASET/annotations/``:

- ``selection.json``: the frames chosen for annotation (global frame indices), in order;
- ``frame_NNNNNNNN.json``: one file per annotated frame, written atomically, with every click
  in image pixel coordinates of the stored frame, its sigma, the annotator and the time.

A person's clicks (the web page) and the oracle's are stored the same way, so everything
downstream treats them alike. Maps are made from clicks by ``saliency.maps.clicks_to_map``.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from saliency_rl.data.atomic import atomic_write_json
from saliency_rl.data.dataset import Dataset
from saliency_rl.errors import DatasetError
from saliency_rl.saliency.maps import click_sigma, clicks_to_map

FRAME_FILE = re.compile(r"^frame_(\d{8})\.json$")


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

    def select(self, count: int, seed: int = 0) -> list[int]:
        """Choose ``count`` frames, spread over the dataset, keeping any earlier selection.

        Frames are drawn one per equal slice of the global frame order (so every part of
        every episode is represented), at a seeded random position within the slice.
        """
        total = self.dataset.num_frames
        if count < 1:
            raise DatasetError(f"the number of frames to annotate must be >= 1, got {count}")
        if count > total:
            raise DatasetError(f"cannot select {count} frames: the dataset has only {total}")
        chosen = self.selection()
        if len(chosen) >= count:
            return chosen[:count]
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
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            self.root / "selection.json", {"frames": chosen, "seed": seed, "updated": now()}
        )
        return chosen

    # ------------------------------------------------------------------ clicks
    def _path(self, frame: int) -> Path:
        return self.root / f"frame_{frame:08d}.json"

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


def annotate_with_oracle(dataset: Dataset, count: int, seed: int = 0) -> list[int]:
    """Click the simulator's salient points on ``count`` selected frames, as a person would.

    Points outside the frame (or hidden behind the camera) are not clicked. Returns the
    annotated frames.
    """
    if "salient_points" not in dataset.fields:
        raise DatasetError(
            f"dataset {dataset.root} has no salient_points field: the oracle has nothing to click"
        )
    store = AnnotationStore(dataset)
    frames = store.select(count, seed)
    height, width = dataset.image_size
    sigma = click_sigma(height, width)
    for frame in frames:
        points = dataset.frame(frame, ["salient_points"])["salient_points"]
        visible = np.isfinite(points).all(axis=1)
        visible &= (
            (points[:, 0] >= 0)
            & (points[:, 0] < width)
            & (points[:, 1] >= 0)
            & (points[:, 1] < height)
        )
        stamp = now()
        clicks = [Click(float(x), float(y), sigma, "oracle", stamp) for x, y in points[visible]]
        store.save(frame, clicks)
    return frames
