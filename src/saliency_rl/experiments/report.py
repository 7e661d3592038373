"""``saliency-rl report RUNS... --out DIR``: one HTML page and one Markdown summary of runs.

Reads run directories (found anywhere under the given paths: a sweep directory, a demo
directory, or single runs), each with ``config.json`` and whatever else it has:

- ``eval.json``: the final evaluation of training (SAC/BC: ``final.return_mean``; A2C:
  ``final.mean``), and its ``history`` for learning curves;
- ``eval_<mode>.json``: ``saliency-rl evaluate RUN --distractor MODE`` (``clean`` too);
- ``metrics.csv``: learning curves when ``eval.json`` has no history;
- images under ``figures/`` (saliency predictions, MultiMAE reconstructions, attention
  masks, keypoints: any PNG/JPEG/GIF, grouped by words in their names), and the newest
  ``reconstructions/*.png`` of a pretraining run.

Writes, atomically::

    OUT/index.html    self-contained: every image embedded as a data URI, no CDN
    OUT/report.md     the same tables; images beside it under OUT/images/ (relative links)
    OUT/images/       learning curves (PNG, matplotlib Agg) and copies of the runs' figures

Tables are laid out as the papers' (rows tasks, columns methods): the mean over seeds of
each run's final return (success rate in % where the task reports success) ± the standard
deviation over seeds, the best of each row in bold.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from saliency_rl.algos.a2c_masks import collapse_note
from saliency_rl.data.atomic import atomic_write_bytes, atomic_write_text
from saliency_rl.errors import SaliencyRLError
from saliency_rl.experiments.probe import SUMMARY_COLUMNS, probe_summary
from saliency_rl.experiments.stats import iqm, stratified_bootstrap_ci

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif")
FIGURES_DIR = "figures"
# Figure sections, in page order: (title, words any of which in a file name puts it there).
FIGURE_SECTIONS = (
    ("Saliency predictions", ("saliency", "annotation", "predictor")),
    ("MultiMAE reconstructions", ("reconstruction", "multimae", "mae")),
    ("Attention masks", ("attention", "mask")),
    ("Keypoints", ("keypoint",)),
    ("Policy rollouts", ("policy", "rollout", "distractor")),
)
OTHER_FIGURES = "Other figures"
FINAL = "final"
"""Condition name of eval.json's final evaluation (training's own evaluation protocol)."""
_SKIP_DIRS = {"checkpoints", "training_state", "tb", "videos", "dataset", FIGURES_DIR}


class ReportError(SaliencyRLError):
    """No runs to report, or an output that cannot be written."""


# ---------------------------------------------------------------------- reading runs
@dataclass
class Run:
    """What the report knows of one run directory."""

    path: Path
    config: dict[str, Any]
    task: str
    """The env spec: a table row."""
    method: str
    """The method label: a table column."""
    seed: Any
    results: dict[str, dict[str, float]] = field(default_factory=dict)
    """condition (``final`` or a distractor mode / ``clean``) -> {return_mean, return_std,
    success_rate?, episodes?}."""
    curve: list[tuple[float, float]] = field(default_factory=list)
    """(step, evaluation return) points of training."""
    curve_label: str = "evaluation return"
    figures: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Warnings about the run (a collapsed attention mask)."""

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class KeypointRun:
    """A ``saliency-rl keypoints`` output directory (keypoints.json, overlays/)."""

    path: Path
    task: str
    method: str
    seed: Any
    k: int
    threshold: float
    precision: float | None
    recall: float | None
    overlays: list[Path] = field(default_factory=list)


def find_keypoint_runs(paths: Iterable[str | Path], max_depth: int = 4) -> list[KeypointRun]:
    """Every directory with a keypoints.json (``saliency-rl keypoints --out DIR``)."""
    found: dict[Path, KeypointRun] = {}
    for root in paths:
        for directory in _walk(Path(root), max_depth):
            report = _read_json(directory / "keypoints.json")
            if not isinstance(report, dict):
                continue
            label = _read_json(directory / "sweep_run.json")
            label = label if isinstance(label, dict) else {}
            metrics = report.get("metrics") or {}
            game = report.get("game")
            found.setdefault(
                directory.resolve(),
                KeypointRun(
                    path=directory,
                    task=str(label.get("task") or (f"atari:{game}" if game else directory.name)),
                    method=str(label.get("method") or report.get("kind")),
                    seed=label.get("seed"),
                    k=int(report.get("k", 0)),
                    threshold=float(report.get("threshold", 0.0)),
                    precision=metrics.get("precision"),
                    recall=metrics.get("recall"),
                    overlays=sorted((directory / "overlays").glob("*.png"))[:4],
                ),
            )
    return sorted(found.values(), key=lambda r: (r.task, r.method, str(r.seed)))


def keypoint_table_markdown(runs: Sequence[KeypointRun]) -> tuple[str, str]:
    """(Markdown, HTML) of precision / recall, rows games, columns methods, mean over seeds
    (the layout of Wu et al. 2021, Table 1); the best precision of a row in bold."""
    groups: dict[tuple[str, str], list[KeypointRun]] = defaultdict(list)
    for r in runs:
        if r.precision is not None:
            groups[(r.task, r.method)].append(r)
    tasks = sorted({t for t, _ in groups})
    methods = sorted({m for _, m in groups})
    md = ["| game | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    rows_html = []
    for task in tasks:
        cells = {}
        for m in methods:
            group = groups.get((task, m))
            if group:
                p = float(np.mean([r.precision for r in group]))
                r_ = float(np.mean([r.recall for r in group]))
                cells[m] = (p, f"{p:.2f} / {r_:.2f}")
        top = max((c[0] for c in cells.values()), default=None)
        bold = {m for m, c in cells.items() if c[0] == top} if len(cells) > 1 else set()
        texts = [
            (f"**{cells[m][1]}**" if m in bold else cells[m][1]) if m in cells else "–"
            for m in methods
        ]
        md.append(f"| {task} | " + " | ".join(texts) + " |")
        tds = "".join(
            (
                f'<td class="best"><b>{cells[m][1]}</b></td>'
                if m in bold
                else f"<td>{cells[m][1]}</td>"
            )
            if m in cells
            else "<td>–</td>"
            for m in methods
        )
        rows_html.append(f"<tr><th>{html.escape(task)}</th>{tds}</tr>")
    head = "".join(f"<th>{html.escape(m)}</th>" for m in methods)
    table = (
        f'<table class="results" data-condition="keypoints"><thead><tr><th>game</th>{head}'
        f"</tr></thead><tbody>{''.join(rows_html)}</tbody></table>"
    )
    return "\n".join(md), table


def find_probes(paths: Iterable[str | Path], max_depth: int = 4) -> list[dict[str, Any]]:
    """Every probe report (``probe.json``, ``saliency-rl probe --out DIR``) under ``paths``."""
    found: dict[Path, dict[str, Any]] = {}
    for root in paths:
        for directory in _walk(Path(root), max_depth):
            report = _read_json(directory / "probe.json")
            if isinstance(report, dict) and "views" in report:
                found.setdefault(directory.resolve(), report)
    return sorted(found.values(), key=lambda r: (r.get("env_spec", ""), r.get("encoder", "")))


def find_runs(paths: Iterable[str | Path], max_depth: int = 4) -> list[Run]:
    """Every run directory (one with ``config.json`` naming an ``algo``) under ``paths``."""
    found: dict[Path, Run] = {}
    for root in paths:
        root = Path(root)
        if not root.exists():
            raise ReportError(f"{root} does not exist: give run directories or a sweep directory")
        for directory in _walk(root, max_depth):
            run = read_run(directory)
            if run is not None:
                found.setdefault(directory.resolve(), run)
    return sorted(found.values(), key=lambda r: (r.task, r.method, str(r.seed), r.name))


def _walk(root: Path, depth: int) -> Iterable[Path]:
    if not root.is_dir():
        return
    yield root
    if depth == 0 or (root / "config.json").is_file() and _is_run_config(root / "config.json"):
        return  # a run's subfolders hold checkpoints, not other runs
    for child in sorted(root.iterdir()):
        if child.is_dir() and child.name not in _SKIP_DIRS and not child.name.startswith("."):
            yield from _walk(child, depth - 1)


def _is_run_config(path: Path) -> bool:
    config = _read_json(path)
    return isinstance(config, dict) and "algo" in config and "env" in config


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def read_run(directory: str | Path) -> Run | None:
    """The Run in ``directory``, or None when it is not a training run."""
    directory = Path(directory)
    config = _read_json(directory / "config.json")
    if not isinstance(config, dict) or "algo" not in config or "env" not in config:
        return None
    label = _read_json(directory / "sweep_run.json")  # a sweep's own column label
    label = label if isinstance(label, dict) else {}
    run = Run(
        path=directory,
        config=config,
        task=str(config["env"]),
        method=str(label.get("method") or config.get("method") or _method_from(config)),
        seed=config.get("seed"),
    )
    evaluation = _read_json(directory / "eval.json")
    if isinstance(evaluation, dict):
        final = _result(evaluation.get("final"))
        if final is not None:
            run.results[FINAL] = final
        history = _history_curve(evaluation.get("history") or [])
        run.curve = history if len(history) >= 2 else []  # one point is no curve
    for path in sorted(directory.glob("eval_*.json")):
        result = _result(_read_json(path))
        if result is not None:
            run.results[path.stem.removeprefix("eval_")] = result
    if not run.curve:
        run.curve, run.curve_label = _metrics_curve(directory / "metrics.csv")
    run.figures = _figures(directory)
    collapsed = collapse_note(directory / "metrics.csv")
    run.notes = [collapsed] if collapsed else []
    return run


def _method_from(config: Mapping[str, Any]) -> str:
    inner = config.get("config") or {}
    if config.get("algo") in ("a2c", "acktr") and "attention" in inner:
        return f"{config['algo']}-{inner['attention']}"
    return str(config.get("algo"))


RESULT_KEYS = ("return_mean", "return_std", "success_rate", "episodes")


def _result(entry: Any) -> dict[str, float] | None:
    """The figures of one evaluation: eval.json's ``final`` or an ``eval_<mode>.json``, both
    in the one format of ``runs.evaluation_entry`` (A2C runs made before it: ``_legacy``)."""
    if not isinstance(entry, dict):
        return None
    entry = _legacy(entry)
    if entry.get("return_mean") is None:
        return None
    return {k: float(entry[k]) for k in RESULT_KEYS if entry.get(k) is not None}


def _legacy(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    """An evaluation of an A2C run made before the one eval.json format (``mean``, ``std``;
    fixture: tests/fixtures/a2c_v1) in today's names."""
    if "return_mean" in entry or "mean" not in entry:
        return entry
    return {**entry, "return_mean": entry["mean"], "return_std": entry.get("std")}


def _history_curve(history: Sequence[Any]) -> list[tuple[float, float]]:
    points = []
    for entry in history:
        if not isinstance(entry, dict) or "step" not in entry:
            continue
        value = _legacy(entry).get("return_mean")
        if value is not None:
            points.append((float(entry["step"]), float(value)))
    return sorted(points)


def _metrics_curve(path: Path) -> tuple[list[tuple[float, float]], str]:
    """Evaluation returns from metrics.csv, else the training returns (episode_return,
    score_mean), whichever has at least two points; else nothing."""
    if not path.is_file():
        return [], "evaluation return"
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for column, label in (
        ("eval_return_mean", "evaluation return"),
        ("episode_return", "training episode return"),
        ("score_mean", "training game score"),
    ):
        points = [
            (float(r["step"]), float(r[column]))
            for r in rows
            if r.get(column) not in (None, "") and r.get("step") not in (None, "")
        ]
        if len(points) >= 2:  # a curve: evaluations if there were several, else training
            return sorted(points), label
    return [], "evaluation return"


def _figures(directory: Path) -> list[Path]:
    figures = sorted(
        p for p in (directory / FIGURES_DIR).glob("*") if p.suffix.lower() in IMAGE_SUFFIXES
    )
    reconstructions = sorted((directory / "reconstructions").glob("*.png"))
    if reconstructions:  # the newest of a pretraining run
        figures.append(reconstructions[-1])
    return [p for p in figures if p.is_file() and p.stat().st_size > 0]


# ---------------------------------------------------------------------- tables
@dataclass
class Table:
    """Rows tasks, columns methods; cells (mean, std, seeds) over seeds, or None."""

    condition: str
    metric: str
    """``return`` or ``success rate (%)``."""
    tasks: list[str]
    methods: list[str]
    cells: dict[tuple[str, str], tuple[float, float, int]]
    scores: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    """The per-seed values behind each cell (for the IQM and its interval)."""

    def best(self, task: str) -> set[str]:
        """Methods with the row's highest mean (as shown, to 0.1); none when all are equal."""
        values = {
            m: round(self.cells[(task, m)][0], 1) for m in self.methods if (task, m) in self.cells
        }
        if len(set(values.values())) < 2:
            return set()
        top = max(values.values())
        return {m for m, v in values.items() if v == top}

    def text(self, task: str, method: str, statistic: str = "mean") -> str:
        """``mean``: mean ± std over seeds; ``iqm``: the IQM with its 95 % stratified-bootstrap
        interval (rliable's method, ``experiments.stats``), a single value for one seed."""
        if (task, method) not in self.cells:
            return "–"
        mean, std, seeds = self.cells[(task, method)]
        seeds_note = "" if seeds == self.seeds else f" (n={seeds})"
        if statistic == "iqm":
            values = self.scores[(task, method)]
            if len(values) < 2:
                return f"{iqm(values):.1f}{seeds_note}"
            low, high = stratified_bootstrap_ci(values)
            return f"{iqm(values):.1f} [{low:.1f}, {high:.1f}]{seeds_note}"
        return f"{mean:.1f} ± {std:.1f}{seeds_note}"

    @property
    def seeds(self) -> int:
        return max((c[2] for c in self.cells.values()), default=0)


def tables(runs: Sequence[Run]) -> list[Table]:
    """One table per condition (``final`` first), metric per task: success where any run of
    the task reports it (ViSaRL's Meta-World tables), return otherwise."""
    conditions = sorted(
        {c for r in runs for c in r.results}, key=lambda c: (c != FINAL, c != "clean", c)
    )
    out = []
    for condition in conditions:
        with_result = [r for r in runs if condition in r.results]
        success_tasks = {r.task for r in with_result if "success_rate" in r.results[condition]}
        groups: dict[tuple[str, str], list[float]] = defaultdict(list)
        for r in with_result:
            result = r.results[condition]
            if r.task in success_tasks:
                groups[(r.task, r.method)].append(100.0 * result.get("success_rate", 0.0))
            else:
                groups[(r.task, r.method)].append(result["return_mean"])
        cells = {key: (float(np.mean(v)), float(np.std(v)), len(v)) for key, v in groups.items()}
        metric = (
            "success rate (%)"
            if success_tasks and success_tasks == {r.task for r in with_result}
            else (
                "return" if not success_tasks else "return; success rate (%) for tasks with success"
            )
        )
        out.append(
            Table(
                condition=condition,
                metric=metric,
                tasks=sorted({t for t, _ in groups}),
                methods=sorted({m for _, m in groups}),
                cells=cells,
                scores={key: list(v) for key, v in groups.items()},
            )
        )
    return out


IQM_NOTE = (
    "The same runs as IQM [95 % stratified-bootstrap interval] over seeds (rliable's method; "
    "10,000 replicates)."
)


def _table_title(table: Table) -> str:
    if table.condition == FINAL:
        return f"Final evaluation of training ({table.metric}; mean ± std over seeds)"
    if table.condition == "clean":
        return f"saliency-rl evaluate, no distractor ({table.metric})"
    if "@" in table.condition:  # MODE@FOLDER: files the user named (DMC-GB's protocol)
        mode, _, folder = table.condition.partition("@")
        return (
            f"saliency-rl evaluate under distractor {mode} with the files of {folder} "
            f"({table.metric}; DMC-GB's protocol: comparable with published DMC-GB numbers "
            "when these are DMC-GB's own clips or colour lists)"
        )
    return (
        f"saliency-rl evaluate under distractor {table.condition} ({table.metric}; our own "
        "distractor set, not comparable with published DMC-GB numbers)"
    )


def table_markdown(table: Table, statistic: str = "mean") -> str:
    """The table as Markdown, cells as ``Table.text(..., statistic)``; best mean in bold."""
    lines = [
        "| task | " + " | ".join(table.methods) + " |",
        "|---|" + "---|" * len(table.methods),
    ]
    for task in table.tasks:
        best = table.best(task)
        cells = [
            f"**{table.text(task, m, statistic)}**" if m in best else table.text(task, m, statistic)
            for m in table.methods
        ]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_html(table: Table, statistic: str = "mean") -> str:
    head = "".join(f"<th>{html.escape(m)}</th>" for m in table.methods)
    rows = []
    for task in table.tasks:
        best = table.best(task)
        cells = "".join(
            f'<td class="best"><b>{html.escape(table.text(task, m, statistic))}</b></td>'
            if m in best
            else f"<td>{html.escape(table.text(task, m, statistic))}</td>"
            for m in table.methods
        )
        rows.append(f"<tr><th>{html.escape(task)}</th>{cells}</tr>")
    return (
        f'<table class="results" data-condition="{html.escape(table.condition)}" '
        f'data-statistic="{statistic}">'
        f"<thead><tr><th>task</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


# ---------------------------------------------------------------------- plots
def learning_curve_png(task: str, runs: Sequence[Run]) -> bytes | None:
    """PNG of one task: per method the mean curve over seeds, shaded ± std (min..max where
    seeds evaluated at different steps are interpolated onto the union of their steps)."""
    by_method: dict[str, list[list[tuple[float, float]]]] = defaultdict(list)
    label = "evaluation return"
    for r in runs:
        if r.curve:
            by_method[r.method].append(r.curve)
            label = r.curve_label
    if not by_method:
        return None
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5.5, 3.4), dpi=100)
    for method, curves in sorted(by_method.items()):
        steps = np.unique(np.concatenate([np.array([p[0] for p in c]) for c in curves]))
        values = np.stack(
            [
                np.interp(steps, [p[0] for p in c], [p[1] for p in c], left=np.nan, right=np.nan)
                for c in curves
            ]
        )  # (seeds, steps); NaN outside a seed's own range
        with np.errstate(all="ignore"):
            counts = np.sum(~np.isnan(values), axis=0)
            mean = np.nanmean(values, axis=0)
            std = np.where(counts > 1, np.nanstd(values, axis=0), 0.0)
        (line,) = axes.plot(steps, mean, marker="o" if len(steps) < 12 else None, ms=3,
                            label=f"{method} ({len(curves)} seed{'s' * (len(curves) > 1)})")  # fmt: skip
        axes.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    axes.set_title(task, fontsize=10)
    axes.set_xlabel("agent steps")
    axes.set_ylabel(label)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


# ---------------------------------------------------------------------- the report
def _section_of(path: Path) -> str:
    name = path.name.lower()
    if path.parent.name == "reconstructions":
        return "MultiMAE reconstructions"
    if "policy" in name:  # the maps a policy used, as it acted
        return "Policy rollouts"
    for title, words in FIGURE_SECTIONS:
        if any(word in name for word in words):
            return title
    return OTHER_FIGURES


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", text).strip("-") or "x"


def _data_uri(data: bytes, suffix: str) -> str:
    kind = {".jpg": "jpeg", ".jpeg": "jpeg", ".gif": "gif"}.get(suffix.lower(), "png")
    return f"data:image/{kind};base64," + base64.b64encode(data).decode("ascii")


def _provenance(config: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("algo", "env", "method", "seed", "preset", "created", "command", "versions")
    return {k: config[k] for k in keys if k in config}


def write_report(
    paths: Iterable[str | Path],
    out: str | Path,
    *,
    title: str = "saliency-rl report",
    notes: Mapping[str, str] | None = None,
) -> Path:
    """Write ``out/index.html`` and ``out/report.md`` for the runs under ``paths``.

    Args:
        paths: run directories, or directories holding runs (a sweep, a demo).
        out: the report directory (created).
        title: the page title.
        notes: extra sections, title -> preformatted text (e.g. the demo's stage times).

    Returns:
        The path of ``index.html``.

    Raises:
        ReportError: no run under ``paths``.
    """
    paths = [Path(p) for p in paths]
    runs = find_runs(paths)
    keypoint_runs = find_keypoint_runs(paths)
    probes = find_probes(paths)
    if not runs and not keypoint_runs and not probes:
        raise ReportError(
            f"no runs under {', '.join(map(str, paths))}: a run directory has a config.json "
            "with 'algo' and 'env' (written by saliency-rl train ...)"
        )
    out = Path(out)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    md: list[str] = [f"# {title}", ""]
    body: list[str] = []
    finished = sum(FINAL in r.results for r in runs)
    summary = f"{len(runs)} runs ({finished} finished) from {', '.join(str(p) for p in paths)}"
    if keypoint_runs:
        summary += f"; {len(keypoint_runs)} keypoint evaluations"
    md += [summary, ""]
    body.append(f'<p class="summary">{html.escape(summary)}</p>')
    warnings = [f"{r.name}: {note}" for r in runs for note in r.notes]
    if warnings:
        md += ["## Warnings", "", *(f"- {w}" for w in warnings), ""]
        items = "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
        body.append(f'<h2>Warnings</h2><ul class="warnings">{items}</ul>')

    for section, text in (notes or {}).items():
        md += [f"## {section}", "", "```", text.rstrip(), "```", ""]
        body.append(f"<h2>{html.escape(section)}</h2><pre>{html.escape(text.rstrip())}</pre>")

    # Tables
    md += ["## Results", ""]
    body.append("<h2>Results</h2>")
    all_tables = tables(runs)
    if keypoint_runs:
        ks = sorted({r.k for r in keypoint_runs})
        thresholds = sorted({r.threshold for r in keypoint_runs})
        title = (
            f"Keypoints: precision / recall against the RAM's objects (k = "
            f"{', '.join(map(str, ks))}; match within {', '.join(f'{t:g}' for t in thresholds)} "
            "pixels of 84x84; mean over seeds)"
        )
        table_md, table_page = keypoint_table_markdown(keypoint_runs)
        md += [f"### {title}", "", table_md, ""]
        body.append(f"<h3>{html.escape(title)}</h3>{table_page}")
    if probes:
        title = "State probes: mean held-out R² of frozen features (saliency-rl probe)"
        header = ["encoder", "task", "frames", *SUMMARY_COLUMNS]
        rows = [
            [r["encoder"], r.get("env_spec", ""), str(r.get("frames", "")), *probe_summary(r)]
            for r in probes
        ]
        md += [f"### {title}", "", "| " + " | ".join(header) + " |"]
        md += ["|" + "---|" * len(header)] + ["| " + " | ".join(row) + " |" for row in rows]
        md += [""]
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        trs = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
        )
        body.append(
            f'<h3>{html.escape(title)}</h3><table class="results" data-condition="probe">'
            f"<thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table>"
        )
    if not all_tables and not keypoint_runs and not probes:
        md += ["No run has an evaluation yet (eval.json).", ""]
        body.append("<p>No run has an evaluation yet (eval.json).</p>")
    for table in all_tables:
        md += [f"### {_table_title(table)}", "", table_markdown(table), ""]
        md += [IQM_NOTE, "", table_markdown(table, "iqm"), ""]
        body.append(f"<h3>{html.escape(_table_title(table))}</h3>{table_html(table)}")
        body.append(f"<p>{html.escape(IQM_NOTE)}</p>{table_html(table, 'iqm')}")

    # Learning curves
    by_task: dict[str, list[Run]] = defaultdict(list)
    for r in runs:
        by_task[r.task].append(r)
    curves = []
    for task, task_runs in sorted(by_task.items()):
        png = learning_curve_png(task, task_runs)
        if png is not None:
            curves.append((task, png))
    if curves:
        md += ["## Learning curves", ""]
        body.append('<h2>Learning curves</h2><div class="grid">')
        for task, png in curves:
            path = images / f"curve_{_slug(task)}.png"
            atomic_write_bytes(path, lambda h, png=png: h.write(png))
            md += [f"![learning curve {task}](images/{path.name})", ""]
            body.append(
                f'<figure><img class="curve" alt="learning curve {html.escape(task)}" '
                f'src="{_data_uri(png, ".png")}"><figcaption>{html.escape(task)}</figcaption></figure>'
            )
        body.append("</div>")

    # Figures, grouped by what they show
    sections: dict[str, list[tuple[Any, Path]]] = defaultdict(list)
    for r in runs:
        for figure in r.figures:
            sections[_section_of(figure)].append((r, figure))
    for kr in keypoint_runs:
        for overlay in kr.overlays:
            sections["Keypoints"].append((kr, overlay))
    order = [t for t, _ in FIGURE_SECTIONS] + [OTHER_FIGURES]
    for section in order:
        if section not in sections:
            continue
        md += [f"## {section}", ""]
        body.append(f'<h2>{html.escape(section)}</h2><div class="grid">')
        for r, figure in sections[section]:
            data = figure.read_bytes()
            name = r.path.name
            copy = images / f"{_slug(name)}__{_slug(figure.name)}"
            atomic_write_bytes(copy, lambda h, data=data: h.write(data))
            caption = f"{name}: {figure.name}"
            md += [f"![{caption}](images/{copy.name})", f"*{caption}*", ""]
            body.append(
                f'<figure><img alt="{html.escape(caption)}" src="{_data_uri(data, figure.suffix)}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
        body.append("</div>")

    # Runs: config and provenance
    md += [
        "## Runs",
        "",
        "| run | task | method | seed | finished | path |",
        "|---|---|---|---|---|---|",
    ]
    body.append("<h2>Runs</h2>")
    for r in runs:
        done = "yes" if FINAL in r.results else "no"
        md.append(f"| {r.name} | {r.task} | {r.method} | {r.seed} | {done} | {r.path} |")
        config_text = json.dumps(r.config, indent=2, default=str)
        results_text = json.dumps(r.results, indent=2)
        body.append(
            f'<details class="run"><summary>{html.escape(r.name)} · {html.escape(r.task)} · '
            f"{html.escape(r.method)} · seed {html.escape(str(r.seed))} · finished {done}</summary>"
            f"<p>{html.escape(str(r.path))}</p>"
            f"<h4>Provenance</h4><pre>{html.escape(json.dumps(_provenance(r.config), indent=2, default=str))}</pre>"
            f"<h4>Results</h4><pre>{html.escape(results_text)}</pre>"
            f"<h4>config.json</h4><pre>{html.escape(config_text)}</pre></details>"
        )
    md.append("")

    page = _PAGE.format(title=html.escape(title), body="\n".join(body))
    index = out / "index.html"
    atomic_write_text(out / "report.md", "\n".join(md))
    atomic_write_text(index, page)
    return index


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em;
       color: #222; }}
table.results {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
table.results th, table.results td {{ border: 1px solid #ccc; padding: 0.3em 0.7em;
       text-align: right; }}
table.results th:first-child {{ text-align: left; }}
td.best {{ background: #eef6ee; }}
.grid {{ display: flex; flex-wrap: wrap; gap: 1em; }}
figure {{ margin: 0; }}
figure img {{ max-width: 100%; image-rendering: pixelated; border: 1px solid #ddd; }}
img.curve {{ image-rendering: auto; }}
figcaption {{ font-size: 0.8em; color: #555; }}
pre {{ background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 0.8em; }}
details.run {{ margin: 0.3em 0; }}
</style></head>
<body>
<h1>{title}</h1>
{body}
</body></html>
"""
