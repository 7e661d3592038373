"""``saliency-rl sweep GRID.yaml``: a grid of (task x method x seed x options) as runs.

Every run is one command line of this CLI (``saliency-rl train ... --out SWEEP/runs/NAME
--seed S --no-progress``), run as a subprocess with its output in ``NAME/sweep.log``; in a
local pool of processes (the default, sized to the machine's cores) or as Ray tasks with
the grid's CPU/GPU request (``--ray ADDRESS``, ``--ray local`` for a local instance). Runs
share nothing but the file system: a Ray cluster needs SWEEP on a shared disk.

A grid file (YAML; the shipped ones are under ``saliency_rl/experiments/grids``)::

    name: tiny                         # default output: runs/sweep_<name>
    description: what it reproduces
    hardware: laptop CPU, about 1 minute   # or: GPU, ~N GPU-hours
    command: train sac                 # the CLI command every run starts with
    task_option: env                   # the option that takes the task (null: none)
    tasks: [dmc:cartpole-swingup, dmc:reacher-easy]
    methods:                           # column label -> options (and optionally
      rgb: {saliency-mode: rgb}        #   command / resources of its own)
      rgbs: {saliency-mode: rgbs, predictor: "{setup}/predictor"}
    seeds: [0, 1]
    options: {total-steps: 100000}     # every run
    vary: {lr: [0.001, 0.0003]}        # optional: more axes, every combination
    resources: {num_cpus: 1, num_gpus: 0}
    prepare:                           # optional: once per sweep, before everything
      - collect --env atari:Assault --frames 50000 --out {sweep}/data/Assault
    setup:                             # optional: once per task, before its runs
      - demo --env {task} --out {setup} --until pretrain
    evaluate: [clean, color_hard]      # optional: saliency-rl evaluate RUN --distractor D

Strings may use ``{task}``, ``{task_slug}``, ``{method}``, ``{seed}``, ``{setup}`` (the
task's setup directory, SWEEP/setup/<task_slug>) and ``{sweep}``.

Restarting the same sweep skips finished runs (``eval.json`` and every ``evaluate`` file
present), resumes unfinished ones with ``--resume`` and starts the rest. A failed run is
reported with the tail of its log; the others go on. ``SWEEP/sweep.json`` holds every
run's status; ``saliency-rl report SWEEP`` reads the runs.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import itertools
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saliency_rl.data.atomic import atomic_write_json
from saliency_rl.envs.spec import check_distractor
from saliency_rl.errors import EnvSpecError, SaliencyRLError

GRIDS_DIR = Path(__file__).parent / "grids"
LOG_FILE = "sweep.log"
SUMMARY_FILE = "sweep.json"
RUN_LABEL_FILE = "sweep_run.json"
"""Written into each run: the grid's method label, which ``report`` uses as the column."""
PYTHON = "{python}"
"""argv[0] placeholder: the Python of whichever machine runs the command (Ray nodes)."""
GRID_KEYS = {
    "name", "description", "hardware", "command", "task_option", "tasks", "methods", "seeds",
    "options", "vary", "resources", "prepare", "setup", "evaluate", "paper", "done_file",
    "no_progress",
}  # fmt: skip
METHOD_KEYS = {"command", "options", "resources"}
LOG_TAIL = 15


class SweepError(SaliencyRLError):
    """A grid that cannot run: the message names the key and what is valid."""


# ---------------------------------------------------------------------- the grid
@dataclass
class RunSpec:
    """One run of a sweep."""

    name: str
    task: str
    method: str
    seed: int
    argv: list[str]
    """The CLI arguments after ``saliency-rl`` (without ``--resume``)."""
    run_dir: Path
    setup: str
    """Key of the task's setup (its slug), or "" when the grid has none."""
    num_cpus: float = 1
    num_gpus: float = 0
    evaluate: list[str] = field(default_factory=list)
    done_file: str = "eval.json"
    """The file a finished run has (training runs: eval.json; keypoints: keypoints.json)."""

    def finished(self) -> bool:
        if not (self.run_dir / self.done_file).is_file():
            return False
        return all((self.run_dir / _eval_file(d)).is_file() for d in self.evaluate)

    def started(self) -> bool:
        """Whether a resumable run is there: its config and at least one checkpoint file."""
        if not (self.run_dir / "config.json").is_file():
            return False
        checkpoints = self.run_dir / "checkpoints"
        return checkpoints.is_dir() and any(p.is_file() for p in checkpoints.rglob("*"))


@dataclass
class Grid:
    """A parsed grid file: its runs, and per task the setup commands to run first."""

    name: str
    path: Path | None
    description: str
    hardware: str
    runs: list[RunSpec]
    setups: dict[str, list[list[str]]]
    """setup key -> the CLI arguments of each setup command, in order."""
    out: Path
    prepare: list[list[str]] = field(default_factory=list)
    """Commands run once before every setup and run (shared pretraining, datasets)."""


def slug(text: str) -> str:
    """``dmc:cartpole-swingup`` -> ``dmc-cartpole-swingup`` (safe as a directory name)."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", str(text)).strip("-")


def find_grid(name_or_path: str | Path) -> Path:
    """A grid file by path, or by name among the shipped grids (``tiny`` -> grids/tiny.yaml)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = GRIDS_DIR / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    raise SweepError(
        f"no grid file {name_or_path}: give a YAML path or a shipped grid: "
        + ", ".join(p.stem for p in shipped_grids())
    )


def shipped_grids() -> list[Path]:
    return sorted(GRIDS_DIR.glob("*.yaml"))


def load_grid(
    path_or_name: str | Path,
    out: str | Path | None = None,
    *,
    parser: argparse.ArgumentParser | None = None,
) -> Grid:
    """Read and validate a grid file; expand it into runs under ``out``.

    ``parser`` is the CLI's (``saliency_rl.cli.build_parser()``): every command line of the
    grid is parsed with it, so that a typo fails now, before any run; None: not checked.
    """
    import yaml

    path = find_grid(path_or_name)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise SweepError(f"{path} is not valid YAML: {str(error).splitlines()[0]}") from None
    return expand_grid(data, out, path=path, parser=parser)


def expand_grid(
    data: Any,
    out: str | Path | None = None,
    path: Path | None = None,
    *,
    parser: argparse.ArgumentParser | None = None,
) -> Grid:
    """The runs of a grid given as a mapping (a parsed YAML file); ``parser`` as in load_grid."""
    where = str(path) if path else "grid"
    if not isinstance(data, dict):
        raise SweepError(f"{where}: a grid is a mapping with tasks, methods, seeds, command")
    unknown = sorted(set(data) - GRID_KEYS)
    if unknown:
        raise SweepError(f"{where}: unknown keys {unknown}; valid: {sorted(GRID_KEYS)}")
    for key in ("command", "tasks", "methods"):
        if key not in data:
            raise SweepError(f"{where}: missing {key!r} (a grid needs command, tasks, methods)")
    name = str(data.get("name") or (path.stem if path else "sweep"))
    out = Path(out) if out else Path("runs") / f"sweep_{slug(name)}"
    out = out.resolve()
    command = _words(data["command"], f"{where}: command")
    tasks = _list(data["tasks"], f"{where}: tasks")
    seeds = _list(data.get("seeds", [0]), f"{where}: seeds")
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise SweepError(f"{where}: seeds must be non-negative integers, got {seeds}")
    methods = data["methods"]
    if isinstance(methods, list):  # [a, b]: labels without options
        methods = {str(m): {} for m in methods}
    if not isinstance(methods, dict) or not methods:
        raise SweepError(f"{where}: methods must map labels to options, e.g. {{rgb: {{...}}}}")
    options = _mapping(data.get("options") or {}, f"{where}: options")
    vary = _mapping(data.get("vary") or {}, f"{where}: vary")
    axes = [(k, _list(v, f"{where}: vary.{k}")) for k, v in vary.items()]
    resources = _resources(data.get("resources") or {}, f"{where}: resources")
    evaluate = [str(d) for d in _list(data.get("evaluate") or [], f"{where}: evaluate")]
    for distractor in evaluate:
        try:
            check_distractor(distractor)
        except EnvSpecError as error:
            raise SweepError(f"{where}: evaluate: {error}") from None
    task_option = data.get("task_option", "env")
    done_file = str(data.get("done_file") or "eval.json")
    no_progress = data.get("no_progress", True)
    setup_lines = [
        _words(line, f"{where}: setup") for line in _list(data.get("setup") or [], "setup")
    ]

    prepare = [
        [
            _fill(w, {"sweep": str(out)}, f"{where}: prepare")
            for w in _words(line, f"{where}: prepare")
        ]
        for line in _list(data.get("prepare") or [], "prepare")
    ]
    runs: list[RunSpec] = []
    setups: dict[str, list[list[str]]] = {}
    for task in tasks:
        task = str(task)
        key = slug(task)
        values = {
            "task": task,
            "task_slug": key,
            "sweep": str(out),
            "setup": str(out / "setup" / key),
        }
        if setup_lines:
            setups[key] = [[_fill(w, values, where) for w in line] for line in setup_lines]
        for label, method in methods.items():
            label = str(label)
            method = _method(method, f"{where}: methods.{label}")
            for combination in itertools.product(*[values_ for _, values_ in axes]):
                for seed in seeds:
                    combo = dict(zip([k for k, _ in axes], combination, strict=True))
                    suffix = "".join(f"__{slug(k)}-{slug(v)}" for k, v in combo.items())
                    name_ = f"{key}__{slug(label)}{suffix}__{seed}"
                    run_dir = out / "runs" / name_
                    fill = {**values, "method": label, "seed": str(seed)}
                    argv = [_fill(w, fill, where) for w in method.get("command") or command]
                    if task_option:
                        argv += [f"--{task_option}", task]
                    merged = {**options, **method["options"], **combo}
                    argv += _options_argv(merged, fill, where)
                    argv += ["--out", str(run_dir), "--seed", str(seed)]
                    argv += ["--no-progress"] if no_progress else []
                    request = {**resources, **method.get("resources", {})}
                    runs.append(
                        RunSpec(
                            name=name_, task=task, method=label, seed=int(seed), argv=argv,
                            run_dir=run_dir, setup=key if setup_lines else "",
                            num_cpus=request.get("num_cpus", 1),
                            num_gpus=request.get("num_gpus", 0), evaluate=evaluate,
                            done_file=done_file,
                        )
                    )  # fmt: skip
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise SweepError(f"{where}: two runs would share a name; make method labels distinct")
    grid = Grid(
        name=name,
        path=path,
        description=str(data.get("description") or ""),
        hardware=str(data.get("hardware") or ""),
        runs=runs,
        setups=setups,
        out=out,
        prepare=prepare,
    )
    if parser is not None:
        check_commands(grid, parser)
    return grid


def _words(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        words = shlex.split(value)
    elif isinstance(value, list) and all(isinstance(w, str | int | float) for w in value):
        words = [str(w) for w in value]
    else:
        raise SweepError(f"{where} must be a command line (a string or a list of words)")
    if words and words[0] == "saliency-rl":
        words = words[1:]
    if not words:
        raise SweepError(f"{where} is empty")
    return words


def _list(value: Any, where: str) -> list:
    if isinstance(value, list) and value:
        return value
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return [value]
    if value == []:
        return []
    raise SweepError(f"{where} must be a non-empty list, got {value!r}")


def _mapping(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise SweepError(f"{where} must be a mapping of option -> value, got {value!r}")
    return {str(k): v for k, v in value.items()}


def _method(value: Any, where: str) -> dict:
    value = {} if value is None else _mapping(value, where)
    if set(value) & METHOD_KEYS:  # the long form: {command, options, resources}
        unknown = sorted(set(value) - METHOD_KEYS)
        if unknown:
            raise SweepError(f"{where}: unknown keys {unknown}; valid: {sorted(METHOD_KEYS)}")
        return {
            "command": _words(value["command"], f"{where}.command") if "command" in value else None,
            "options": _mapping(value.get("options") or {}, f"{where}.options"),
            "resources": _resources(value.get("resources") or {}, f"{where}.resources"),
        }
    return {"command": None, "options": value, "resources": {}}


def _resources(value: Any, where: str) -> dict[str, float]:
    value = _mapping(value, where)
    unknown = sorted(set(value) - {"num_cpus", "num_gpus"})
    if unknown:
        raise SweepError(f"{where}: unknown keys {unknown}; valid: num_cpus, num_gpus")
    for key, amount in value.items():
        if not isinstance(amount, int | float) or isinstance(amount, bool) or amount < 0:
            raise SweepError(f"{where}.{key} must be a number >= 0, got {amount!r}")
    if value.get("num_cpus", 1) <= 0:
        raise SweepError(f"{where}.num_cpus must be > 0")
    return value


def _fill(text: Any, values: Mapping[str, str], where: str) -> str:
    text = str(text)
    try:
        return text.format_map(values)
    except KeyError as error:
        raise SweepError(
            f"{where}: unknown placeholder {{{error.args[0]}}} in {text!r}; valid: "
            + ", ".join(
                f"{{{k}}}" for k in ("task", "task_slug", "method", "seed", "setup", "sweep")
            )
        ) from None
    except (ValueError, IndexError) as error:
        raise SweepError(f"{where}: bad placeholder in {text!r}: {error}") from None


def _options_argv(options: Mapping[str, Any], values: Mapping[str, str], where: str) -> list[str]:
    argv: list[str] = []
    for key, value in options.items():
        flag = "--" + str(key).lstrip("-")
        if value is None or value is False:
            continue
        if value is True:
            argv.append(flag)
        elif isinstance(value, list):
            argv += [flag, *(_fill(v, values, where) for v in value)]
        else:
            argv += [flag, _fill(value, values, where)]
    return argv


def check_commands(grid: Grid, parser: argparse.ArgumentParser) -> None:
    """Parse every command line with the CLI's parser: a typo fails now, in one line."""
    lines = [(r.name, r.argv) for r in grid.runs]
    lines += [(f"setup of {key}", argv) for key, argvs in grid.setups.items() for argv in argvs]
    lines += [("prepare", argv) for argv in grid.prepare]
    for name, argv in lines:
        captured = io.StringIO()
        try:
            with contextlib.redirect_stderr(captured):
                parser.parse_args(argv)
        except SystemExit:
            message = captured.getvalue().strip().splitlines()
            reason = message[-1] if message else "invalid arguments"
            raise SweepError(
                f"run {name}: `saliency-rl {shlex.join(argv)}` is not a valid command: {reason}"
            ) from None


# ---------------------------------------------------------------------- running
@dataclass
class Outcome:
    """What happened to one run (or setup) of a sweep."""

    name: str
    status: str
    """done (finished before, skipped), ok, resumed, failed."""
    seconds: float = 0.0
    log: str = ""
    tail: str = ""
    """The end of the log of a failed run."""


def execute(
    commands: Sequence[Sequence[str]],
    log_path: str,
    threads: int,
    extra_env: Mapping[str, str],
    markers: Sequence[str] | None = None,
) -> tuple[int, float]:
    """Run CLI command lines one after the other, appending their output to ``log_path``.

    Module level so Ray can ship it to a worker; ``{python}`` in argv[0] becomes the
    worker's own interpreter. ``markers``: per command, a file written when it succeeds and
    whose presence skips it (setups: a retry does not collect a dataset twice). Returns
    (exit code of the first failure or 0, seconds).
    """
    env = {**os.environ, **extra_env}
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)  # torch's default thread count follows these
    start = time.perf_counter()
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        for index, argv in enumerate(commands):
            marker = Path(markers[index]) if markers else None
            if marker is not None and marker.is_file():
                continue
            argv = [sys.executable if w == PYTHON else w for w in argv]
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            shown = shlex.join(["saliency-rl", *argv[3:]])
            log.write(f"\n==> {stamp} {shown}\n".encode())
            log.flush()
            code = subprocess.call(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
            if code != 0:
                log.write(f"==> exit code {code}\n".encode())
                return code, time.perf_counter() - start
            if marker is not None:
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.write_text(stamp + "\n")
    return 0, time.perf_counter() - start


def _eval_file(distractor: str) -> str:
    """``evaluate``'s result file for a distractor (``MODE:PATH`` names the folder)."""
    from saliency_rl.evaluation import eval_file_name

    return eval_file_name(distractor)


def _cli(argv: Sequence[str]) -> list[str]:
    return [PYTHON, "-m", "saliency_rl.cli", *argv]


def _tail(path: Path, lines: int = LOG_TAIL) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.rstrip().splitlines()[-lines:])


@dataclasses.dataclass(frozen=True)
class _Job:
    """Command lines a worker runs one after the other, into one log (``execute``'s)."""

    commands: list[list[str]]
    log: Path
    cpus: float
    gpus: float = 0
    markers: list[str] | None = None

    def arguments(self) -> tuple:
        """``execute``'s arguments: the command lines, the log, the threads and the markers."""
        return self.commands, str(self.log), max(1, int(self.cpus)), {}, self.markers


class _LocalPool:
    def __init__(self, workers: int) -> None:
        self.pool = ThreadPoolExecutor(max_workers=workers)

    def submit(self, job: _Job) -> Callable[[], tuple[int, float]]:
        return self.pool.submit(execute, *job.arguments()).result

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class _RayPool:
    def __init__(self, address: str, workers: int | None) -> None:
        try:
            import ray
        except ImportError:
            raise SweepError("--ray needs ray: pip install 'saliency-rl[cluster]'") from None
        self.ray = ray
        if not ray.is_initialized():
            if address == "local":
                ray.init(
                    num_cpus=workers or os.cpu_count() or 1, include_dashboard=False,
                    log_to_driver=False, configure_logging=False,
                )  # fmt: skip
            else:
                ray.init(address=address, log_to_driver=False)
        self.remote = ray.remote(execute)

    def submit(self, job: _Job) -> Callable[[], tuple[int, float]]:
        remote = self.remote.options(num_cpus=job.cpus, num_gpus=job.gpus)
        ref = remote.remote(*job.arguments())
        return lambda: self.ray.get(ref)

    def close(self) -> None:
        pass  # a cluster outlives the sweep; a local instance ends with the process


def run_sweep(
    grid: Grid,
    *,
    workers: int | None = None,
    ray: str | None = None,
    echo: Callable[[str], None] | None = None,
) -> list[Outcome]:
    """Run every unfinished run of ``grid``; return the outcomes (also in sweep.json)."""
    echo = echo or (lambda text: print(text, flush=True))
    out = grid.out
    out.mkdir(parents=True, exist_ok=True)
    cpus = max((r.num_cpus for r in grid.runs), default=1)
    if workers is None:
        workers = max(1, int((os.cpu_count() or 1) // max(cpus, 1)))
    if workers < 1:
        raise SweepError(f"--workers must be >= 1, got {workers}")
    backend = "ray " + ray if ray else f"local pool of {workers}"
    echo(f"sweep {grid.name}: {len(grid.runs)} runs in {out} ({backend})")
    pool: Any = _RayPool(ray, workers if ray == "local" else None) if ray else _LocalPool(workers)
    outcomes: dict[str, Outcome] = {}
    try:
        # The sweep's preparation, then setups (one per task, in parallel), then the runs of
        # tasks whose setup worked.
        marker = out / ".prepare_done"
        if grid.prepare and not marker.is_file():
            log = out / "prepare.log"
            echo(f"  prepare ... (log {log})")
            steps = [str(out / f".prepare_{i}_done") for i in range(len(grid.prepare))]
            code, seconds = pool.submit(
                _Job([_cli(a) for a in grid.prepare], log, cpus, markers=steps)
            )()
            if code != 0:
                tail = _tail(log)
                echo(f"  prepare: FAILED (exit {code}); last lines of {log}:\n{_indent(tail)}")
                raise SweepError(f"the sweep's prepare commands failed; see {log}")
            marker.write_text(time.strftime("%Y-%m-%d %H:%M:%S\n"))
            echo(f"  prepare: ok ({seconds:.0f} s)")
        setup_waits = {}
        for key, commands in grid.setups.items():
            marker = out / "setup" / key / ".setup_done"
            if marker.is_file():
                continue
            log = out / "setup" / f"{key}.log"
            steps = [str(out / "setup" / f".{key}_{i}_done") for i in range(len(commands))]
            setup_waits[key] = pool.submit(
                _Job([_cli(a) for a in commands], log, cpus, markers=steps)
            )
            echo(f"  setup {key} ... (log {log})")
        failed_setups = set()
        for key, wait in setup_waits.items():
            code, seconds = wait()
            log = out / "setup" / f"{key}.log"
            if code == 0:
                marker = out / "setup" / key / ".setup_done"
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.write_text(time.strftime("%Y-%m-%d %H:%M:%S\n"))
                echo(f"  setup {key}: ok ({seconds:.0f} s)")
            else:
                failed_setups.add(key)
                tail = _tail(log)
                outcomes[f"setup {key}"] = Outcome(
                    f"setup {key}", "failed", seconds, str(log), tail
                )
                echo(f"  setup {key}: FAILED (exit {code}); last lines of {log}:\n{_indent(tail)}")

        waits = []
        for run in grid.runs:
            run.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(  # the grid's labels, for the report's table
                run.run_dir / RUN_LABEL_FILE,
                {"grid": grid.name, "task": run.task, "method": run.method, "seed": run.seed,
                 "command": shlex.join(["saliency-rl", *run.argv])},
            )  # fmt: skip
            if run.finished():
                outcomes[run.name] = Outcome(run.name, "done", 0.0, str(run.run_dir / LOG_FILE))
                continue
            if run.setup in failed_setups:
                outcomes[run.name] = Outcome(
                    run.name, "failed", 0.0, "", f"setup {run.setup} failed"
                )
                continue
            commands, status = _commands(run)
            log = run.run_dir / LOG_FILE
            waits.append(
                (run, status, log, pool.submit(_Job(commands, log, run.num_cpus, run.num_gpus)))
            )
        skipped = sum(o.status == "done" for o in outcomes.values())
        if skipped:
            echo(f"  {skipped} runs finished before: skipped")
        for run, status, log, wait in waits:
            code, seconds = wait()
            if code == 0 and run.finished():
                outcomes[run.name] = Outcome(run.name, status, seconds, str(log))
                echo(f"  {run.name}: {status} ({seconds:.0f} s)")
            else:
                tail = _tail(log)
                outcomes[run.name] = Outcome(run.name, "failed", seconds, str(log), tail)
                echo(f"  {run.name}: FAILED (exit {code}); last lines of {log}:\n{_indent(tail)}")
            _write_summary(grid, outcomes)
    finally:
        pool.close()
    ordered = [outcomes[r.name] for r in grid.runs if r.name in outcomes]
    ordered += [o for k, o in outcomes.items() if k.startswith("setup ")]
    _write_summary(grid, outcomes)
    echo(summary_table(grid, ordered))
    return ordered


def _commands(run: RunSpec) -> tuple[list[list[str]], str]:
    """The command lines still to run for ``run``, and the status they earn."""
    commands: list[list[str]] = []
    status = "ok"
    if not (run.run_dir / run.done_file).is_file():
        if run.started():
            commands.append(_cli([*run.argv, "--resume"]))
            status = "resumed"
        else:
            if run.run_dir.is_dir():
                # Killed before its first checkpoint: nothing to resume; start afresh,
                # keeping only the log.
                for path in run.run_dir.iterdir():
                    if path.name not in (LOG_FILE, RUN_LABEL_FILE):
                        shutil.rmtree(path) if path.is_dir() else path.unlink()
            commands.append(_cli(run.argv))
    for distractor in run.evaluate:
        if not (run.run_dir / _eval_file(distractor)).is_file():
            flag = [] if distractor == "clean" else ["--distractor", distractor]
            commands.append(_cli(["evaluate", str(run.run_dir), *flag]))
    return commands, status


def _indent(text: str) -> str:
    return "\n".join("      " + line for line in text.splitlines())


def _final(run: RunSpec) -> str:
    import json

    try:
        result = json.loads((run.run_dir / run.done_file).read_text())
    except (OSError, ValueError):
        return ""
    if isinstance(result.get("metrics"), dict):  # keypoints.json
        m = result["metrics"]
        return f"precision {m.get('precision', 0):.2f} recall {m.get('recall', 0):.2f}"
    final = result.get("final") or {}
    if final.get("success_rate") is not None:
        return f"success {100 * final['success_rate']:.0f}%"
    value = final.get("return_mean", final.get("mean"))
    return "" if value is None else f"return {value:.1f}"


def summary_table(grid: Grid, outcomes: Sequence[Outcome]) -> str:
    by_name = {r.name: r for r in grid.runs}
    width = max([len(o.name) for o in outcomes] + [3])
    lines = [f"{'run':{width}s}  {'status':8s}  {'seconds':>7s}  result"]
    for o in outcomes:
        run = by_name.get(o.name)
        result = _final(run) if run is not None and o.status != "failed" else o.log
        lines.append(f"{o.name:{width}s}  {o.status:8s}  {o.seconds:7.0f}  {result}")
    counts = {s: sum(o.status == s for o in outcomes) for s in ("ok", "resumed", "done", "failed")}
    lines.append(
        ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        + f"; results in {grid.out}  (saliency-rl report {grid.out})"
    )
    return "\n".join(lines)


def _write_summary(grid: Grid, outcomes: Mapping[str, Outcome]) -> None:
    atomic_write_json(
        grid.out / SUMMARY_FILE,
        {
            "grid": grid.name,
            "grid_file": str(grid.path) if grid.path else None,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "runs": [
                {
                    "name": r.name,
                    "task": r.task,
                    "method": r.method,
                    "seed": r.seed,
                    "command": shlex.join(["saliency-rl", *r.argv]),
                    "status": outcomes[r.name].status if r.name in outcomes else "pending",
                    "seconds": round(outcomes[r.name].seconds, 1) if r.name in outcomes else None,
                }
                for r in grid.runs
            ],
        },
    )
