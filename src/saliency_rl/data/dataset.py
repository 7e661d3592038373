"""The on-disk dataset: a directory of episodes, one compressed file each.

Layout (../shared/DESIGN.md)::

    DATASET/
      meta.json                               schema version, env spec, fields, provenance
      episodes/episode_000000_len0201.npz     one file per episode, written atomically
      fields/saliency/episode_000000.npz      extra fields, one file per episode and field,
                                              so labelling never rewrites frames
      annotations/                            clicks (see saliency.annotations)

An episode of T environment steps has T+1 frames, and every field has one row per frame:
``rgb[t]`` is the newest frame of observation t (frames are stored unstacked), ``action[t]``
the action taken at frame t and ``reward[t]`` the reward it earned; the last frame has a
zero action and reward, and ``terminal`` is True on it when the episode ended in a terminal
state (not a time limit). Frames are numbered across episodes in order (global index).

Episode files are discovered by name, and the length is in the name, so opening a dataset
reads no frames. A writer killed mid-episode leaves nothing visible but finished episodes.
"""

from __future__ import annotations

import datetime
import json
import re
import zipfile
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from saliency_rl import __version__
from saliency_rl.data.atomic import TMP_SUFFIX, atomic_write_bytes, atomic_write_json
from saliency_rl.errors import DatasetError

FORMAT = "saliency-rl-dataset"
SCHEMA_VERSION = 1
EPISODE_PATTERN = re.compile(r"^episode_(\d{6})_len(\d+)\.npz$")
FIELD_FILE_PATTERN = re.compile(r"^episode_(\d{6})\.npz$")
FIELD_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_CACHE_EPISODES = 8


@dataclass(frozen=True)
class FieldSpec:
    """dtype and per-frame shape of one field."""

    dtype: str
    shape: tuple[int, ...]

    def to_json(self) -> dict:
        return {"dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_json(cls, obj: Mapping) -> FieldSpec:
        return cls(str(obj["dtype"]), tuple(int(s) for s in obj["shape"]))

    @classmethod
    def of(cls, array: np.ndarray) -> FieldSpec:
        """The spec of a stacked (T, ...) array."""
        return cls(str(array.dtype), tuple(array.shape[1:]))


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class Dataset:
    """A dataset directory: read frames and fields by index, append episodes, add fields.

    Use ``Dataset.create`` for a new one and ``Dataset.open`` for an existing one.
    """

    def __init__(self, root: Path, meta: dict) -> None:
        self.root = Path(root)
        self.meta = meta
        self._episode_files: list[Path] = []
        self._lengths = np.zeros(0, dtype=np.int64)
        self._starts = np.zeros(1, dtype=np.int64)
        self._cache: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()
        self.refresh()

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(
        cls,
        root: str | Path,
        *,
        env_spec: str,
        env_options: Mapping[str, Any],
        fields: Mapping[str, FieldSpec],
        salient_point_names: Sequence[str] = (),
        camera: Mapping[str, Any] | None = None,
    ) -> Dataset:
        """Create an empty dataset; DatasetError if ``root`` exists and is not empty.

        ``camera`` describes the frames' camera where known (e.g. ``{"fovy_degrees": 45}``,
        which turns depth into surface normals).
        """
        root = Path(root)
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise DatasetError(
                f"cannot create a dataset at {root}: it exists and is not an empty directory"
            )
        (root / "episodes").mkdir(parents=True, exist_ok=True)
        meta = {
            "format": FORMAT,
            "schema_version": SCHEMA_VERSION,
            "env_spec": env_spec,
            "env_options": dict(env_options),
            "fields": {name: spec.to_json() for name, spec in fields.items()},
            "extra_fields": {},
            "salient_point_names": list(salient_point_names),
            "camera": dict(camera or {}),
            "provenance": {"created": _now(), "package_version": __version__, "collections": []},
        }
        atomic_write_json(root / "meta.json", meta)
        return cls(root, meta)

    @classmethod
    def open(cls, root: str | Path) -> Dataset:
        """Open an existing dataset; DatasetError naming the file if it is missing, damaged or foreign."""
        root = Path(root)
        if not root.exists():
            raise DatasetError(
                f"dataset {root} does not exist; create one with `saliency-rl collect --env SPEC --out {root}`"
            )
        if not root.is_dir():
            raise DatasetError(f"dataset {root} is not a directory")
        meta_path = root / "meta.json"
        if not meta_path.is_file():
            raise DatasetError(f"{root} is not a saliency-rl dataset: it has no meta.json")
        try:
            meta = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise DatasetError(f"{meta_path} is damaged: not valid JSON ({error})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise DatasetError(
                f"{meta_path} is not a saliency-rl dataset description (no format {FORMAT!r})"
            )
        version = meta.get("schema_version")
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise DatasetError(
                f"{meta_path} has schema version {version!r}; this saliency-rl {__version__} reads "
                f"versions up to {SCHEMA_VERSION}: upgrade saliency-rl"
            )
        for key in ("env_spec", "env_options", "fields", "extra_fields", "provenance"):
            if key not in meta:
                raise DatasetError(f"{meta_path} is damaged: it has no {key!r} entry")
        return cls(root, meta)

    # ------------------------------------------------------------------ index
    def refresh(self) -> None:
        """Re-scan the episode files (another process may have appended)."""
        found: dict[int, tuple[Path, int]] = {}
        for path in sorted((self.root / "episodes").iterdir()):
            if path.name.startswith(".") and path.name.endswith(TMP_SUFFIX):
                continue  # a write in progress, or one killed before its rename
            match = EPISODE_PATTERN.match(path.name)
            if not match:
                raise DatasetError(
                    f"unexpected file {path} in the dataset: episode files are named "
                    "episode_NNNNNN_lenT.npz; move the file out of the dataset"
                )
            index, length = int(match.group(1)), int(match.group(2))
            if index in found:
                raise DatasetError(
                    f"two files for episode {index}: {found[index][0]} and {path}; remove one"
                )
            found[index] = (path, length)
        missing = sorted(set(range(len(found))) - set(found))
        if missing:
            raise DatasetError(
                f"dataset {self.root} lacks episode {missing[0]} but has later ones; episodes must be numbered "
                "0, 1, 2, ... without gaps"
            )
        self._episode_files = [found[i][0] for i in range(len(found))]
        self._lengths = np.array([found[i][1] for i in range(len(found))], dtype=np.int64)
        self._starts = np.concatenate([[0], np.cumsum(self._lengths)])
        self._cache.clear()

    @property
    def env_spec(self) -> str:
        return self.meta["env_spec"]

    @property
    def env_options(self) -> dict:
        return self.meta["env_options"]

    @property
    def fields(self) -> dict[str, FieldSpec]:
        """Every field: those in episode files and the extra ones."""
        specs = {n: FieldSpec.from_json(s) for n, s in self.meta["fields"].items()}
        specs.update({n: FieldSpec.from_json(s) for n, s in self.meta["extra_fields"].items()})
        return specs

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of the frames."""
        shape = self.fields["rgb"].shape
        return int(shape[-2]), int(shape[-1])

    @property
    def num_episodes(self) -> int:
        return len(self._episode_files)

    @property
    def num_frames(self) -> int:
        return int(self._starts[-1])

    @property
    def episode_lengths(self) -> np.ndarray:
        """Frames per episode, int64 (E,)."""
        return self._lengths.copy()

    def __len__(self) -> int:
        return self.num_frames

    def locate(self, index: int) -> tuple[int, int]:
        """(episode, step) of a global frame index."""
        if not -self.num_frames <= index < self.num_frames:
            raise IndexError(
                f"frame {index} is out of range: the dataset has {self.num_frames} frames"
            )
        index %= max(self.num_frames, 1)
        episode = int(np.searchsorted(self._starts, index, side="right") - 1)
        return episode, int(index - self._starts[episode])

    def global_index(self, episode: int, step: int) -> int:
        return int(self._starts[episode] + step)

    # ------------------------------------------------------------------ reading
    def episode(self, index: int, fields: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """All fields (or the named ones) of one episode, each (T, ...)."""
        if not 0 <= index < self.num_episodes:
            raise IndexError(
                f"episode {index} is out of range: the dataset has {self.num_episodes} episodes"
            )
        data = self._load_episode(index)
        wanted = list(self.fields) if fields is None else list(fields)
        out = {}
        for name in wanted:
            if name in data:
                out[name] = data[name]
            elif name in self.meta["extra_fields"]:
                out[name] = self._load_extra(name, index)
            else:
                raise KeyError(f"no field {name!r}; fields: {', '.join(self.fields)}")
        return out

    def frame(self, index: int, fields: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """One frame's fields by global index."""
        episode, step = self.locate(index)
        return {name: array[step] for name, array in self.episode(episode, fields).items()}

    def frames(
        self, indices: Sequence[int], fields: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Several frames by global index, stacked: each field (len(indices), ...)."""
        rows = [self.frame(int(i), fields) for i in indices]
        names = list(rows[0]) if rows else list(fields or self.fields)
        return {name: np.stack([row[name] for row in rows]) for name in names}

    def iter_batches(
        self, batch_size: int, fields: Sequence[str] | None = None
    ) -> Iterator[dict[str, np.ndarray]]:
        """Consecutive frames in batches of ``batch_size`` (the last may be smaller), crossing episodes."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        pending: list[dict[str, np.ndarray]] = []
        count = 0
        for episode in range(self.num_episodes):
            data = self.episode(episode, fields)
            start = 0
            length = int(self._lengths[episode])
            while start < length:
                take = min(batch_size - count, length - start)
                pending.append({n: a[start : start + take] for n, a in data.items()})
                count += take
                start += take
                if count == batch_size:
                    yield {n: np.concatenate([p[n] for p in pending]) for n in pending[0]}
                    pending, count = [], 0
        if pending:
            yield {n: np.concatenate([p[n] for p in pending]) for n in pending[0]}

    def _load_episode(self, index: int) -> dict[str, np.ndarray]:
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        path = self._episode_files[index]
        data = _read_npz(path, list(self.meta["fields"]), int(self._lengths[index]))
        self._cache[index] = data
        if len(self._cache) > _CACHE_EPISODES:
            self._cache.popitem(last=False)
        return data

    def _field_path(self, name: str, episode: int) -> Path:
        return self.root / "fields" / name / f"episode_{episode:06d}.npz"

    def _load_extra(self, name: str, episode: int) -> np.ndarray:
        path = self._field_path(name, episode)
        if not path.exists():
            raise DatasetError(
                f"field {name!r} is missing for episode {episode} ({path}); it was added for only "
                "some episodes: write it for the rest"
            )
        return _read_npz(path, [name], int(self._lengths[episode]))[name]

    def has_field(self, name: str) -> bool:
        """True when the field exists for every episode."""
        if name in self.meta["fields"]:
            return True
        if name not in self.meta["extra_fields"]:
            return False
        return all(self._field_path(name, e).exists() for e in range(self.num_episodes))

    # ------------------------------------------------------------------ writing
    def append_episode(self, arrays: Mapping[str, np.ndarray]) -> int:
        """Write one episode atomically and return its index.

        ``arrays`` must hold exactly the dataset's episode fields, each (T, ...) with the
        declared dtype and per-frame shape and one common T >= 1.
        """
        expected = self.meta["fields"]
        if set(arrays) != set(expected):
            raise DatasetError(
                f"episode fields {sorted(arrays)} do not match the dataset's {sorted(expected)}"
            )
        lengths = {len(a) for a in arrays.values()}
        if len(lengths) != 1 or 0 in lengths:
            raise DatasetError(f"episode fields have different or zero lengths: {sorted(lengths)}")
        for name, array in arrays.items():
            spec = FieldSpec.from_json(expected[name])
            if FieldSpec.of(np.asarray(array)) != spec:
                raise DatasetError(
                    f"field {name!r} has dtype {array.dtype} and frame shape {tuple(array.shape[1:])}; "
                    f"the dataset stores {spec.dtype} {spec.shape}"
                )
        self.refresh()  # another writer may have appended since we opened
        index = self.num_episodes
        length = lengths.pop()
        path = self.root / "episodes" / f"episode_{index:06d}_len{length:04d}.npz"
        atomic_write_bytes(path, lambda handle: np.savez_compressed(handle, **arrays))
        self.refresh()
        return index

    def write_field(
        self, name: str, episode: int, array: np.ndarray, provenance: Mapping | None = None
    ) -> None:
        """Store an extra per-frame field (e.g. ``saliency``) for one episode, atomically.

        The first write declares the field's dtype and frame shape in meta.json; frames are
        never rewritten.
        """
        if not FIELD_NAME_PATTERN.match(name):
            raise DatasetError(
                f"field name {name!r} is not valid: use lower-case letters, digits and _"
            )
        if name in self.meta["fields"]:
            raise DatasetError(f"field {name!r} is part of the episodes and cannot be replaced")
        if not 0 <= episode < self.num_episodes:
            raise IndexError(
                f"episode {episode} is out of range: the dataset has {self.num_episodes} episodes"
            )
        array = np.asarray(array)
        if len(array) != self._lengths[episode]:
            raise DatasetError(
                f"field {name!r} for episode {episode} has {len(array)} rows; the episode has "
                f"{self._lengths[episode]} frames"
            )
        spec = FieldSpec.of(array)
        declared = self.meta["extra_fields"].get(name)
        if declared is not None and FieldSpec.from_json(declared) != spec:
            raise DatasetError(
                f"field {name!r} is stored as {declared['dtype']} {tuple(declared['shape'])}, "
                f"got {spec.dtype} {spec.shape}"
            )
        if declared is None or provenance:
            entry = spec.to_json()
            if provenance:
                entry["provenance"] = dict(provenance)
            self.meta["extra_fields"][name] = entry
            atomic_write_json(self.root / "meta.json", self.meta)
        path = self._field_path(name, episode)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, lambda handle: np.savez_compressed(handle, **{name: array}))

    def record_collection(self, entry: Mapping[str, Any]) -> None:
        """Append a provenance entry (policy, seed, episodes written, time, version) to meta.json."""
        self.meta["provenance"]["collections"].append(
            {**entry, "time": _now(), "package_version": __version__}
        )
        atomic_write_json(self.root / "meta.json", self.meta)

    def summary(self) -> str:
        """A few human-readable lines: spec, size, fields."""
        fields = ", ".join(f"{n} {s.dtype}{list(s.shape)}" for n, s in self.fields.items())
        lines = [
            f"dataset   {self.root}",
            f"env       {self.env_spec}  {json.dumps(self.env_options, sort_keys=True)}",
            f"episodes  {self.num_episodes}   frames {self.num_frames}",
            f"fields    {fields}",
        ]
        if self.meta.get("salient_point_names"):
            lines.append(f"salient   {', '.join(self.meta['salient_point_names'])}")
        return "\n".join(lines)


def _read_npz(path: Path, names: Sequence[str], length: int) -> dict[str, np.ndarray]:
    """Load the named arrays; DatasetError naming the file if it is damaged or foreign."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [n for n in names if n not in archive.files]
            if missing:
                raise DatasetError(
                    f"{path} is not an episode of this dataset: it lacks field(s) {', '.join(missing)}"
                )
            data = {n: archive[n] for n in names}
    except DatasetError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as error:
        raise DatasetError(
            f"{path} is damaged and cannot be read ({type(error).__name__}: {error}); the other "
            "episodes are intact: move this file out of the dataset to use them"
        ) from None
    for name, array in data.items():
        if len(array) != length:
            raise DatasetError(
                f"{path} is damaged: field {name!r} has {len(array)} rows, expected {length}"
            )
    return data
