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

Files are not trusted: every read checks each field's dtype, frame shape and row count
against meta.json, and float fields for NaN and inf (``salient_points`` excepted: a point
behind the camera is NaN), naming the file when one does not match. ``check`` opens every
file's header (no frames are decompressed) to find damaged or foreign files up front.

A collection is recorded in meta.json before its first episode and its range is extended
before each episode file appears, so a killed ``collect`` leaves every episode on disk
covered. A field written for many episodes (``stage_field``) stays in a hidden folder until
every episode has it; only then is it moved into place and declared in meta.json.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import shutil
import zipfile
import zlib
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
# Fields whose NaN means something: salient points behind the camera (envs.mujoco_render).
NON_FINITE_ALLOWED = frozenset({"salient_points"})
# What reading a damaged npz file raises: zipfile's errors, numpy's header errors, zlib's.
_READ_ERRORS = (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, zlib.error)


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
        data = _read_npz(path, self._episode_specs(), int(self._lengths[index]))
        self._cache[index] = data
        if len(self._cache) > _CACHE_EPISODES:
            self._cache.popitem(last=False)
        return data

    def _episode_specs(self) -> dict[str, FieldSpec]:
        return {n: FieldSpec.from_json(s) for n, s in self.meta["fields"].items()}

    def _field_path(self, name: str, episode: int) -> Path:
        return self.root / "fields" / name / f"episode_{episode:06d}.npz"

    def episode_file(self, episode: int) -> Path:
        """The file that holds episode ``episode``."""
        return self._episode_files[episode]

    def episodes_lacking(self, name: str) -> list[int]:
        """Episodes that have no file for the extra field ``name``."""
        return [e for e in range(self.num_episodes) if not self._field_path(name, e).exists()]

    def _load_extra(self, name: str, episode: int) -> np.ndarray:
        path = self._field_path(name, episode)
        if not path.exists():
            raise DatasetError(
                f"field {name!r} is missing for episode {episode} ({path}), so "
                f"{self._episode_files[episode]} was added after the field was written, or "
                "does not belong to this dataset: write the field again, or move the episode out"
            )
        spec = FieldSpec.from_json(self.meta["extra_fields"][name])
        return _read_npz(path, {name: spec}, int(self._lengths[episode]))[name]

    # ------------------------------------------------------------------ checking
    def check(self, read: bool = False, extra_fields: Sequence[str] | None = None) -> list[str]:
        """Every damaged or foreign episode and field file, one line each naming it; [] if none.

        Opens each file's header only (names, dtypes and shapes of its arrays: no frames are
        decompressed), which finds truncated files and files of another dataset. With
        ``read``, also reads every array in full: damage inside a file (checksums) and NaN
        or inf in float fields, at the cost of reading the whole dataset. ``extra_fields``:
        the extra fields whose files are checked (all declared ones by default).
        """
        problems = []
        declared = self.meta["extra_fields"]
        names = declared if extra_fields is None else [n for n in extra_fields if n in declared]
        extras = {n: FieldSpec.from_json(declared[n]) for n in names}
        specs = self._episode_specs()
        for episode, path in enumerate(self._episode_files):
            length = int(self._lengths[episode])
            problems += _check_npz(path, specs, length, read)
            for name, spec in extras.items():
                field_path = self._field_path(name, episode)
                if field_path.exists():
                    problems += _check_npz(field_path, {name: spec}, length, read)
        problems += self._orphan_field_files(list(extras))
        return problems

    def verify(self, read: bool = False, extra_fields: Sequence[str] | None = None) -> None:
        """DatasetError naming the first damaged or foreign file (see ``check``)."""
        problems = self.check(read, extra_fields)
        if problems:
            more = f" (and {len(problems) - 1} more: `saliency-rl info {self.root}` lists them)"
            raise DatasetError(problems[0] + (more if len(problems) > 1 else ""))

    def _orphan_field_files(self, names: Sequence[str]) -> list[str]:
        # A field file with no episode would be paired with the next episode collected.
        problems = []
        for name in names:
            folder = self.root / "fields" / name
            if not folder.is_dir():
                continue
            for path in sorted(folder.iterdir()):
                match = FIELD_FILE_PATTERN.match(path.name)
                if match and int(match.group(1)) >= self.num_episodes:
                    problems.append(
                        f"{path} belongs to no episode (the dataset has {self.num_episodes}): "
                        "move it out of the dataset"
                    )
        return problems

    def has_field(self, name: str) -> bool:
        """True when the field exists for every episode."""
        if name in self.meta["fields"]:
            return True
        if name not in self.meta["extra_fields"]:
            return False
        return all(self._field_path(name, e).exists() for e in range(self.num_episodes))

    # ------------------------------------------------------------------ writing
    def append_episode(
        self, arrays: Mapping[str, np.ndarray], collection: int | None = None
    ) -> int:
        """Write one episode atomically and return its index.

        ``arrays`` must hold exactly the dataset's episode fields, each (T, ...) with the
        declared dtype and per-frame shape and one common T >= 1. ``collection`` (from
        ``begin_collection``) is the provenance record the episode extends.
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
            # What a reader would refuse is never written.
            problem = _non_finite(name, np.asarray(array))
            if problem is not None:
                raise DatasetError(f"the episode to append {problem}; it is not written")
        self.refresh()  # another writer may have appended since we opened
        index = self.num_episodes
        length = lengths.pop()
        path = self.root / "episodes" / f"episode_{index:06d}_len{length:04d}.npz"
        record = None
        if collection is not None:
            # Claimed before the file appears: a kill between the two leaves a record one
            # episode too long, which begin_collection trims, never an episode unrecorded.
            record = self.meta["provenance"]["collections"][collection]
            previous = dict(record)
            record["episodes"] = [record["episodes"][0], index + 1]
            record["frames"] = int(record.get("frames", 0)) + length
            atomic_write_json(self.root / "meta.json", self.meta)
        try:
            atomic_write_bytes(path, lambda handle: np.savez_compressed(handle, **arrays))
        except Exception:
            if record is not None:
                record.clear()
                record.update(previous)
                with contextlib.suppress(OSError):
                    atomic_write_json(self.root / "meta.json", self.meta)
            raise
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
        problem = _non_finite(name, array)
        if problem is not None:
            raise DatasetError(f"field {name!r} for episode {episode} {problem}; it is not written")
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

    def begin_collection(self, entry: Mapping[str, Any]) -> int:
        """Record a collection (policy, seed, ...) in meta.json before its first episode.

        Returns the record's index for ``append_episode(..., collection=)``, which extends its
        ``episodes`` range [first, end) and ``frames`` count with each episode. Episodes on
        disk that no record covers (a collect of an older version, killed) get a record of
        unknown policy and seed first, so every episode's provenance stays recorded.
        """
        self.refresh()
        self._cover_every_episode()
        collections = self.meta["provenance"]["collections"]
        collections.append(
            {
                **entry,
                "episodes": [self.num_episodes, self.num_episodes],
                "frames": 0,
                "time": _now(),
                "package_version": __version__,
            }
        )
        atomic_write_json(self.root / "meta.json", self.meta)
        return len(collections) - 1

    def _cover_every_episode(self) -> None:
        """Make the collection records match the episodes on disk (after a killed collect)."""
        collections = self.meta["provenance"]["collections"]
        count = self.num_episodes
        changed = False
        for record in collections:
            first, end = (int(i) for i in record["episodes"])
            if end > count:  # claimed by append_episode, killed before the file appeared
                first = min(first, count)
                record["episodes"] = [first, count]
                record["frames"] = int(self._lengths[first:count].sum())
                changed = True
        covered = max((int(r["episodes"][1]) for r in collections), default=0)
        if covered < count:
            collections.append(
                {
                    "episodes": [covered, count],
                    "frames": int(self._lengths[covered:count].sum()),
                    "recovered": "episodes found on disk with no collection record (a collect "
                    "killed before it recorded itself); their policy and seed are unknown",
                    "time": _now(),
                    "package_version": __version__,
                }
            )
            changed = True
        if changed:
            atomic_write_json(self.root / "meta.json", self.meta)

    def stage_field(
        self, name: str, provenance: Mapping[str, Any], same: Sequence[str] = ()
    ) -> FieldStaging:
        """Write the extra field ``name`` for every episode so that a failure changes nothing.

        ``same``: the provenance keys that make earlier labels this writer's own (e.g.
        ``("predictor_hash",)``); their episodes count as done. See ``FieldStaging``.
        """
        return FieldStaging(self, name, provenance, same)

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


class FieldStaging:
    """One extra field written for every episode, visible only once it is whole.

    Files go to the hidden folder ``fields/.NAME.partial/`` beside ``field.json`` (the
    writer's provenance). ``commit`` swaps that folder in for ``fields/NAME/`` and declares
    the field in meta.json last, so a run that fails leaves the dataset as it was
    (``discard``), and one killed midway leaves only the hidden folder, from which a run of
    the same provenance resumes. A commit killed between its renames is finished, or undone,
    when the next staging of the field opens.
    """

    def __init__(
        self, dataset: Dataset, name: str, provenance: Mapping[str, Any], same: Sequence[str]
    ) -> None:
        if not FIELD_NAME_PATTERN.match(name):
            raise DatasetError(
                f"field name {name!r} is not valid: use lower-case letters, digits and _"
            )
        if name in dataset.meta["fields"]:
            raise DatasetError(f"field {name!r} is part of the episodes and cannot be replaced")
        self.dataset = dataset
        self.name = name
        self.provenance = dict(provenance)
        self.same = tuple(same)
        self.final = dataset.root / "fields" / name
        self.partial = dataset.root / "fields" / f".{name}.partial"
        self._old = dataset.root / "fields" / f".{name}.old"
        self._finish_interrupted_commit()
        self._resumed = self.partial.is_dir() and self._is_own(self._staged_provenance())
        self._started = self._resumed
        self._written: list[Path] = []
        self._spec: FieldSpec | None = None

    # ------------------------------------------------------------------ state
    def _is_own(self, provenance: Mapping | None) -> bool:
        if provenance is None:
            return False
        if not self.same:
            return dict(provenance) == self.provenance
        return all(provenance.get(k) == self.provenance.get(k) for k in self.same)

    def _staged_provenance(self) -> dict | None:
        try:
            return json.loads((self.partial / "field.json").read_text()).get("provenance")
        except (OSError, ValueError, AttributeError):
            return None

    def _file(self, episode: int) -> str:
        return f"episode_{episode:06d}.npz"

    def in_place(self) -> set[int]:
        """Episodes whose field is in place and declared with this writer's provenance."""
        declared = self.dataset.meta["extra_fields"].get(self.name)
        if declared is None or not self._is_own(declared.get("provenance")):
            return set()
        lacking = set(self.dataset.episodes_lacking(self.name))
        return set(range(self.dataset.num_episodes)) - lacking

    def done(self) -> set[int]:
        """Episodes already written by this writer: staged by a killed run, or in place."""
        staged = set()
        if self._resumed:
            staged = {
                e
                for e in range(self.dataset.num_episodes)
                if (self.partial / self._file(e)).exists()
            }
        return staged | self.in_place()

    # ------------------------------------------------------------------ writing
    def write(self, episode: int, array: np.ndarray) -> None:
        """Stage the field of one episode (T, ...), atomically; nothing is visible yet."""
        dataset = self.dataset
        if not 0 <= episode < dataset.num_episodes:
            raise IndexError(
                f"episode {episode} is out of range: the dataset has {dataset.num_episodes} episodes"
            )
        array = np.asarray(array)
        if array.ndim == 0 or len(array) != dataset.episode_lengths[episode]:
            raise DatasetError(
                f"field {self.name!r} for episode {episode} has {len(np.atleast_1d(array))} "
                f"rows; the episode has {dataset.episode_lengths[episode]} frames"
            )
        problem = _non_finite(self.name, array)
        if problem is not None:
            raise DatasetError(f"{self.name!r} for episode {episode} {problem}; it is not written")
        spec = FieldSpec.of(array)
        if self._spec is not None and spec != self._spec:
            raise DatasetError(
                f"field {self.name!r} is staged as {self._spec.dtype} {self._spec.shape}, "
                f"got {spec.dtype} {spec.shape} for episode {episode}"
            )
        self._spec = spec
        self._start()
        path = self.partial / self._file(episode)
        atomic_write_bytes(path, lambda handle: np.savez_compressed(handle, **{self.name: array}))
        self._written.append(path)

    def _start(self) -> None:
        if self._started:
            return
        # What another writer staged and never committed is replaced, not mixed with ours.
        shutil.rmtree(self.partial, ignore_errors=True)
        self.partial.mkdir(parents=True)
        atomic_write_json(self.partial / "field.json", {"provenance": self.provenance})
        self._started = True

    def discard(self) -> None:
        """Remove what this run staged (a killed run's staging, resumed, stays to resume from)."""
        if not self._resumed:
            shutil.rmtree(self.partial, ignore_errors=True)
            return
        for path in self._written:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def commit(self) -> None:
        """Put the staged field in place and declare it in meta.json; DatasetError if incomplete."""
        self._start()
        for episode in self.in_place():  # labelled in place by an older run of this writer
            target = self.partial / self._file(episode)
            if not target.exists():
                source = self.dataset._field_path(self.name, episode)
                try:
                    os.link(source, target)
                except OSError:  # a file system without hard links
                    shutil.copy2(source, target)
        count = self.dataset.num_episodes
        missing = [e for e in range(count) if not (self.partial / self._file(e)).exists()]
        if missing or count == 0:
            raise DatasetError(
                f"cannot declare field {self.name!r}: {len(missing)} of {count} episodes have "
                f"no file in {self.partial} (first: episode {missing[0] if missing else '-'})"
            )
        dtype, shape = _npz_headers(self.partial / self._file(0))[self.name]
        entry = {**FieldSpec(str(dtype), tuple(shape[1:])).to_json(), "provenance": self.provenance}
        # field.json now holds meta.json's entry, so a commit killed after the swap finishes.
        atomic_write_json(self.partial / "field.json", entry)
        if self.final.exists():
            shutil.rmtree(self._old, ignore_errors=True)
            os.replace(self.final, self._old)
        os.replace(self.partial, self.final)
        self._declare(entry)

    def _declare(self, entry: Mapping[str, Any]) -> None:
        self.dataset.meta["extra_fields"][self.name] = dict(entry)
        atomic_write_json(self.dataset.root / "meta.json", self.dataset.meta)
        (self.final / "field.json").unlink()
        shutil.rmtree(self._old, ignore_errors=True)

    def _finish_interrupted_commit(self) -> None:
        if (self.final / "field.json").is_file():  # swapped in, meta.json not yet written
            self._declare(json.loads((self.final / "field.json").read_text()))
        elif self._old.is_dir() and not self.final.exists():  # between the two renames
            os.replace(self._old, self.final)
        elif self._old.is_dir():  # declared, the old folder not yet removed
            shutil.rmtree(self._old)


def _read_npz(path: Path, specs: Mapping[str, FieldSpec], length: int) -> dict[str, np.ndarray]:
    """Load the arrays of ``specs``; DatasetError naming the file if one does not match meta.json."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [n for n in specs if n not in archive.files]
            if missing:
                raise DatasetError(
                    f"{path} is not a file of this dataset: it lacks field(s) {', '.join(missing)}"
                )
            data = {n: archive[n] for n in specs}
    except DatasetError:
        raise
    except _READ_ERRORS as error:
        raise DatasetError(_damaged(path, error)) from None
    for name, array in data.items():
        problem = _mismatch(name, array.dtype, array.shape, specs[name], length)
        if problem is None:
            problem = _non_finite(name, array)
        if problem is not None:
            raise DatasetError(f"{path} {problem}: {_advice(path)}")
    return data


def _check_npz(path: Path, specs: Mapping[str, FieldSpec], length: int, read: bool) -> list[str]:
    """What is wrong with one file ([] or one line naming it), from its headers or in full."""
    try:
        headers = _npz_headers(path)
    except _READ_ERRORS as error:
        return [_damaged(path, error)]
    foreign = sorted(set(headers) - set(specs))
    missing = sorted(set(specs) - set(headers))
    if foreign or missing:
        what = []
        if missing:
            what.append(f"lacks field(s) {', '.join(missing)}")
        if foreign:
            what.append(f"holds field(s) {', '.join(foreign)} that meta.json does not declare")
        return [f"{path} is not a file of this dataset: it {' and '.join(what)}"]
    for name, (dtype, shape) in headers.items():
        problem = _mismatch(name, dtype, shape, specs[name], length)
        if problem is not None:
            return [f"{path} {problem}: {_advice(path)}"]
    if read:
        try:
            _read_npz(path, specs, length)
        except DatasetError as error:
            return [str(error)]
    return []


def _npz_headers(path: Path) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """Name -> (dtype, shape) of each array in an npz file, decompressing only its header."""
    headers = {}
    with zipfile.ZipFile(path) as archive:  # reads the directory at the end: finds truncation
        for member in archive.namelist():
            with archive.open(member) as stream:
                version = np.lib.format.read_magic(stream)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
            headers[member.removesuffix(".npy")] = (dtype, tuple(shape))
    return headers


def _mismatch(
    name: str, dtype: np.dtype, shape: tuple[int, ...], spec: FieldSpec, length: int
) -> str | None:
    """How an array differs from its meta.json declaration, as the end of a sentence."""
    if str(dtype) != spec.dtype or tuple(shape[1:]) != spec.shape or len(shape) == 0:
        return (
            f"does not match meta.json: field {name!r} is {dtype} {tuple(shape[1:])} per frame "
            f"where meta.json declares {spec.dtype} {spec.shape}, so it belongs to another "
            "dataset or was written by other means"
        )
    if shape[0] != length:
        return (
            f"is damaged: field {name!r} has {shape[0]} rows where the episode has {length} frames"
        )
    return None


def _advice(path: Path) -> str:
    if path.parent.parent.name == "fields":  # fields/NAME/episode_N.npz: derived, rewritable
        return "write the field again (e.g. `saliency-rl label --overwrite`) or move the file out"
    return "move it out of the dataset"


def _non_finite(name: str, array: np.ndarray) -> str | None:
    if name in NON_FINITE_ALLOWED or not np.issubdtype(array.dtype, np.floating):
        return None
    finite = np.isfinite(array)
    if finite.all():
        return None
    bad = np.flatnonzero(~finite.reshape(len(array), -1).all(axis=1))
    return (
        f"holds NaN or inf in float field {name!r} ({int((~finite).sum())} values, first at "
        f"frame {int(bad[0])}), where a field must be finite"
    )


def _damaged(path: Path, error: BaseException) -> str:
    return (
        f"{path} is damaged and cannot be read ({type(error).__name__}: {error}); the other "
        "files are intact: move this one out of the dataset to use them"
    )
