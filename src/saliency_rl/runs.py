"""Run directories, shared by every trainer: ``runs/<name>/``.

Layout (../shared/DESIGN.md)::

    runs/<name>/
      config.json        everything that defines the run (written atomically)
      metrics.csv        one row per log interval; appended, flushed at every row
      checkpoints/       model + training state for an exact resume
      eval.json          the final evaluation
      tb/                TensorBoard events (``run_log.RunLog``)

:class:`Run` is the lifecycle every trainer and pretraining shares: create a run (its
config.json header written once, the directory removed again if setup fails) or open one to
resume (settings changes checked and recorded; a run killed before its first checkpoint
starts again from step 0), then save and load its one checkpoint, ``checkpoints/latest``.

Runs are named like CleanRL's, ``<env>__<method>__<seed>__<unix time>``, e.g.
``atari-MsPacman__a2c-joint__1__1732190000``.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime
import io
import json
import numbers
import random
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from saliency_rl.data.atomic import atomic_write_bytes, atomic_write_json
from saliency_rl.errors import SaliencyRLError

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.csv"
EVAL_FILE = "eval.json"
CHECKPOINTS_DIR = "checkpoints"
LATEST = "latest"  # the checkpoint a resume continues from: checkpoints/latest
TENSORBOARD_DIR = "tb"
# What a run writes while it trains: a run that stopped before its first checkpoint
# starts again from step 0 without them (its config.json is kept).
_PROGRESS_FILES = (METRICS_FILE, EVAL_FILE)
_PROGRESS_DIRS = (TENSORBOARD_DIR, "videos")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]+")


class RunError(SaliencyRLError, ValueError):
    """A run cannot start or resume, or a training setting is not valid."""


def now() -> str:
    """The time in UTC, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def package_versions(*packages: str) -> dict[str, str]:
    """Versions of saliency-rl, torch and ``packages`` (those installed), for config.json."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("saliency-rl", "torch", *packages):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


def run_name(env_spec: str, method: str, seed: int, at: float | None = None) -> str:
    """``<env>__<method>__<seed>__<unix time>`` with ``:`` and other unsafe characters as ``-``."""
    env = _UNSAFE.sub("-", env_spec)
    stamp = int(time.time() if at is None else at)
    return f"{env}__{_UNSAFE.sub('-', method)}__{seed}__{stamp}"


def create_run(run_dir: str | Path) -> Path:
    """Make ``run_dir`` and its ``checkpoints/``; RunError if it already holds a run."""
    run_dir = Path(run_dir)
    if (run_dir / CONFIG_FILE).exists():
        raise RunError(
            f"{run_dir} already holds a run; pass --resume to continue it, or choose another "
            "--name or --out"
        )
    (run_dir / CHECKPOINTS_DIR).mkdir(parents=True, exist_ok=True)
    return run_dir


@contextlib.contextmanager
def new_run(run_dir: str | Path) -> Iterator[Path]:
    """Create ``run_dir`` (as :func:`create_run`) for a block that writes its config.json and
    builds its trainer; if the block fails (a setting found bad only once the networks are
    built, an interruption), what it created is removed, so the same command can run again.

    Only entries that did not exist before are removed: a folder the user made keeps
    whatever else it held.
    """
    run_dir = Path(run_dir)
    before = {p.name for p in run_dir.iterdir()} if run_dir.is_dir() else None
    created = create_run(run_dir)
    try:
        yield created
    except BaseException:
        if before is None:
            shutil.rmtree(run_dir, ignore_errors=True)
        else:
            for path in run_dir.iterdir():
                if path.name not in before:
                    if path.is_dir():
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        path.unlink(missing_ok=True)
        raise


def restart_without_checkpoint(run_dir: str | Path) -> None:
    """Prepare a run that stopped before its first checkpoint to start from step 0 with its
    saved config.json: the metrics, TensorBoard events and videos it wrote are dropped (they
    will be written again) and the user is told so on stderr."""
    run_dir = Path(run_dir)
    for name in _PROGRESS_FILES:
        (run_dir / name).unlink(missing_ok=True)
    for name in _PROGRESS_DIRS:
        shutil.rmtree(run_dir / name, ignore_errors=True)
    (run_dir / CHECKPOINTS_DIR).mkdir(parents=True, exist_ok=True)
    print(
        f"saliency-rl: {run_dir} stopped before its first checkpoint: starting it again from "
        "step 0 with its saved config",
        file=sys.stderr,
    )


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically (config.json, eval.json)."""
    atomic_write_json(Path(path), obj)


def read_json(path: str | Path, what: str) -> Any:
    """Read a JSON file; RunError naming it if missing or damaged."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"{path} does not exist: no {what} there")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunError(f"{path} is damaged: not valid JSON ({error})") from None


def read_run(run_dir: str | Path, algos: Sequence[str], resuming: bool = False) -> dict[str, Any]:
    """A run's config.json; RunError if it is missing, damaged, or of another ``algo``
    (when ``resuming``, the error names the command that resumes the run it is)."""
    run_dir = Path(run_dir)
    names = " or ".join(a.upper() for a in algos)
    saved = read_json(run_dir / CONFIG_FILE, f"{names} run ({CONFIG_FILE})")
    algo = saved.get("algo")
    if algo not in algos:
        hint = (
            f": resume it with `saliency-rl train {algo} --resume`"
            if resuming and isinstance(algo, str) and algo
            else ""
        )
        raise RunError(f"{run_dir} is not {article(names)} {names} run (algo {algo!r}){hint}")
    return saved


def article(word: str) -> str:
    """The indefinite article before a name spelt in capitals or a suite name (an A2C, an
    atari, a SAC run): 'an' before a vowel letter."""
    return "an" if word[:1].upper() in "AEIOU" else "a"


def resumed_config(
    run_dir: str | Path,
    saved: dict[str, Any],
    old: Any,
    changes: Mapping[str, Any],
    resumable: Sequence[str],
) -> Any:
    """The settings a resumed run continues with, the changes recorded in its config.json.

    ``old`` is the run's config (a dataclass with ``validate`` and ``to_json``); ``changes``
    are its field names and new values (None: unchanged). Only the fields in ``resumable``
    (budgets, log and evaluation intervals) may differ; RunError names the others.
    """
    changes = {k: v for k, v in changes.items() if v is not None}
    unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(old)})
    if unknown:
        raise RunError(f"unknown {type(old).__name__} settings {unknown}")
    refused = sorted(k for k in changes if k not in resumable and getattr(old, k) != changes[k])
    if refused:
        raise RunError(
            f"a resumed run keeps its settings; {', '.join(refused)} cannot change "
            f"(only {', '.join(resumable)} can)"
        )
    changed = {k: v for k, v in changes.items() if getattr(old, k) != v}
    config = dataclasses.replace(old, **changed).validate()
    if changed:
        saved["config"] = config.to_json()
        saved.setdefault("resumes", []).append({"time": now(), "changes": changed})
        write_json(Path(run_dir) / CONFIG_FILE, saved)
    return config


def check_settings(
    config: Any,
    *,
    positive: Sequence[str] = (),
    non_negative: Sequence[str] = (),
    fractions: Sequence[str] = (),
    choices: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """RunError naming the first setting of ``config`` out of its range: ``positive`` > 0,
    ``non_negative`` >= 0, ``fractions`` in [0, 1), ``choices`` one of the valid values.

    The one range check of every config dataclass's ``validate`` (each adds what is its own:
    settings that depend on each other)."""
    for name, valid in (choices or {}).items():
        value = getattr(config, name)
        if value not in valid:
            raise RunError(f"unknown {name} {value!r}; valid: {', '.join(map(str, valid))}")
    rules = (
        (positive, lambda v: v > 0, "> 0"),
        (non_negative, lambda v: v >= 0, ">= 0"),
        (fractions, lambda v: 0 <= v < 1, "in [0, 1)"),
    )
    for names, ok, bound in rules:
        for name in names:
            value = getattr(config, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not ok(value):
                raise RunError(f"{name} must be {bound}, got {value!r}")


def crossed(before: int, after: int, every: int) -> bool:
    """Whether a multiple of ``every`` lies in (before, after]: a log, evaluation or
    checkpoint is due when a step counter passes one."""
    return every > 0 and after // every > before // every


def python_rng_state() -> list:
    """Python's ``random`` state as JSON-storable lists (for a checkpoint's training state)."""
    version_, internal, gauss = random.getstate()
    return [version_, list(internal), gauss]


def set_python_rng_state(state: Sequence) -> None:
    """Restore a state from :func:`python_rng_state`."""
    random.setstate((state[0], tuple(state[1]), state[2]))


class MetricsLog:
    """metrics.csv with fixed columns; a row may leave columns empty.

    Rows are appended and flushed one at a time, so a killed run keeps all rows it logged.
    ``truncate(step)`` drops rows logged after a checkpoint, before a resume logs them again.
    """

    def __init__(self, path: str | Path, columns: Sequence[str]) -> None:
        self.path, self.columns = Path(path), list(columns)
        if self.path.exists() and self.path.stat().st_size > 0:
            with self.path.open(newline="") as handle:
                header = next(csv.reader(handle), [])
            if header != self.columns:
                raise RunError(
                    f"{self.path} has columns {header}, this trainer writes {self.columns}: "
                    "it belongs to another kind of run"
                )
        else:
            self._rewrite([])

    def log(self, row: Mapping[str, Any]) -> None:
        """Append one row: values of known columns (floats to 6 significant digits)."""
        unknown = set(row) - set(self.columns)
        if unknown:
            raise KeyError(f"metrics {sorted(unknown)} are not columns of {self.path}")
        with self.path.open("a", newline="") as handle:
            csv.writer(handle).writerow([_cell(row.get(c)) for c in self.columns])

    def rows(self) -> list[dict[str, str]]:
        """Every row as strings (empty string: no value)."""
        with self.path.open(newline="") as handle:
            return list(csv.DictReader(handle))

    def truncate(self, step: int, column: str = "step") -> None:
        """Drop rows whose ``column`` is greater than ``step`` (rewritten atomically)."""
        kept = [r for r in self.rows() if r[column] == "" or int(float(r[column])) <= step]
        self._rewrite(kept)

    def _rewrite(self, rows: list[dict[str, str]]) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(self.columns)
        for row in rows:
            writer.writerow([row.get(c, "") for c in self.columns])
        data = buffer.getvalue().encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.path, lambda handle: handle.write(data))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def evaluation_entry(step: int, summary: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """One evaluation as eval.json holds it, the same for every trainer: ``step``, ``extra``
    (``frames``, ...), ``return_mean``, ``return_std``, ``success_rate`` where the task has
    success, ``episodes`` (how many), and per episode ``returns``, ``lengths`` and, where the
    task has success, ``successes``.

    ``summary``: ``saliency_rl.algos.rollout.summarize``'s dict."""
    entry: dict[str, Any] = {"step": int(step), **extra}
    entry["return_mean"] = summary["return_mean"]
    entry["return_std"] = summary["return_std"]
    if summary.get("success_rate") is not None:
        entry["success_rate"] = summary["success_rate"]
    entry["episodes"] = summary["episodes"]
    episodes = summary.get("per_episode", [])
    entry["returns"] = [e["episode_return"] for e in episodes]
    entry["lengths"] = [e["length"] for e in episodes]
    if "success_rate" in entry:
        entry["successes"] = [bool(e["success"]) for e in episodes]
    return entry


def run_header(
    algo: str,
    env: str,
    env_options: Mapping[str, Any],
    seed: int,
    method: str,
    preset: str,
    config: Mapping[str, Any],
    device: str,
    versions: Sequence[str] = (),
    **extra: Any,
) -> dict[str, Any]:
    """The config.json of a new run: what defines it (``extra``: the trainer's own entries,
    e.g. checkpoints it reads), where and when it was made, and the package versions."""
    return {
        "algo": algo,
        "env": env,
        "env_options": dict(env_options),
        "seed": seed,
        "method": method,
        "preset": preset,
        "config": dict(config),
        **extra,
        "device": str(device),
        "created": now(),
        "command": " ".join(sys.argv),
        "versions": package_versions(*versions),
    }


class Run:
    """One run directory: its config.json (``saved``) and its checkpoint.

    Make one with :meth:`create` (a new run) or :meth:`resume` (an existing one, to continue
    it), or :meth:`open` to read a finished one.
    """

    def __init__(self, path: str | Path, saved: dict[str, Any]) -> None:
        self.path = Path(path)
        self.saved = saved

    # -------------------------------------------------------------- making and opening
    @classmethod
    @contextlib.contextmanager
    def create(cls, out: str | Path, header: Mapping[str, Any]) -> Iterator[Run]:
        """A new run at ``out`` with ``header`` as its config.json, for a block that builds
        the trainer: if the block fails, what it created is removed (:func:`new_run`)."""
        with new_run(out) as run_dir:
            write_json(run_dir / CONFIG_FILE, dict(header))
            yield cls(run_dir, dict(header))

    @classmethod
    def open(cls, path: str | Path, algos: Sequence[str]) -> Run:
        """An existing run of one of ``algos``; RunError if it is not one."""
        return cls(path, read_run(path, algos))

    @classmethod
    def resume(
        cls,
        path: str | Path,
        algos: Sequence[str],
        config: Any,
        changes: Mapping[str, Any],
        resumable: Sequence[str],
        check: Callable[[dict[str, Any]], None] | None = None,
    ) -> tuple[Run, Any]:
        """Open a run to continue it: ``config`` parses its saved settings
        (``Config.from_json``), ``changes`` are checked against ``resumable`` and recorded
        (:func:`resumed_config`); returns the run and the settings it continues with. A run
        without a checkpoint is prepared to start again from step 0
        (:func:`restart_without_checkpoint`). ``check(saved)`` may refuse the run (raise)
        before anything is written."""
        path = Path(path)
        saved = read_run(path, algos, resuming=True)
        if check is not None:
            check(saved)
        settings = resumed_config(
            path, saved, config.from_json(saved["config"]), changes, resumable
        )
        run = cls(path, saved)
        if not run.has_checkpoint():
            restart_without_checkpoint(path)
        return run, settings

    def record(self, **entries: Any) -> None:
        """Add entries to config.json (what the run decided once: precision, bounds)."""
        self.saved.update(entries)
        write_json(self.path / CONFIG_FILE, self.saved)

    def write_eval(self, step: int, evaluations: Sequence[Mapping[str, Any]], **extra: Any) -> None:
        """eval.json of a finished run: who it is (algo, env, method, seed), where it stopped
        (``step``, ``extra``), its last evaluation as ``final`` (None without one) and all of
        them as ``history`` (each an :func:`evaluation_entry`)."""
        write_json(
            self.path / EVAL_FILE,
            {
                "algo": self.saved.get("algo"),
                "env": self.saved.get("env"),
                "method": self.saved.get("method"),
                "seed": self.saved.get("seed"),
                "step": int(step),
                **extra,
                "final": dict(evaluations[-1]) if evaluations else None,
                "history": [dict(e) for e in evaluations],
            },
        )

    # -------------------------------------------------------------- the checkpoint
    @property
    def checkpoint_dir(self) -> Path:
        return self.path / CHECKPOINTS_DIR / LATEST

    def has_checkpoint(self) -> bool:
        from saliency_rl.checkpoint import is_checkpoint

        return is_checkpoint(self.checkpoint_dir)

    def save_checkpoint(
        self, config: Mapping[str, Any], weights: Mapping[str, Any], state: Mapping[str, Any]
    ) -> None:
        """Write checkpoints/latest (model config, weights, training state), atomically."""
        from saliency_rl.checkpoint import save_checkpoint

        save_checkpoint(self.checkpoint_dir, dict(config), weights, dict(state))

    def load_model(self, device: Any = "cpu") -> tuple[dict[str, Any], dict[str, Any]]:
        """The latest checkpoint's model config and weights (for a policy); RunError if
        there is no checkpoint yet."""
        from saliency_rl.checkpoint import load_checkpoint

        if not self.has_checkpoint():
            raise RunError(f"{self.path} has no checkpoint yet ({self.checkpoint_dir} is missing)")
        return load_checkpoint(self.checkpoint_dir, device)

    def load_checkpoint(self, device: Any = "cpu") -> tuple[dict[str, Any], dict[str, Any]]:
        """The latest checkpoint's weights and training state; CheckpointError if it has no
        training state to resume from."""
        from saliency_rl.checkpoint import load_checkpoint, load_training_state
        from saliency_rl.errors import CheckpointError

        _, weights = load_checkpoint(self.checkpoint_dir, device)
        state = load_training_state(self.checkpoint_dir, device)
        if state is None:
            raise CheckpointError(f"{self.checkpoint_dir} has no training state to resume from")
        return weights, state
