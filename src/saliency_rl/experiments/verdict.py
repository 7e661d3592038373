"""The demo's verdict: did saliency help, clean and under a distractor? Computed, never typed.

Two arms (without and with saliency) trained on the same data with the same budget and
seed, each evaluated on the same episode seeds clean and under one distractor
(``eval_clean.json``, ``eval_<mode>.json``). The verdict reads their per-episode results:
the score of each arm in each condition (Meta-World: success rate; otherwise return), the
share of its clean score each arm keeps under the distractor, and the difference between
the arms with a 95 % bootstrap interval over evaluation episodes (episodes are paired: the
same seed gives both arms the same start state, colours and background). One sentence
follows from those numbers.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

BOOTSTRAP_REPLICATES = 10_000


@dataclass(frozen=True)
class ArmResult:
    """One arm's scores: clean, under the distractor, and the share kept."""

    name: str
    clean: float
    distracted: float
    kept: float | None
    """distracted / clean; None when the clean score is not positive."""
    episodes: int
    clean_return: float
    """Mean return clean (the score itself where the metric is the return)."""
    distracted_return: float


@dataclass(frozen=True)
class Verdict:
    metric: str
    """``success rate`` or ``return``."""
    distractor: str
    without: ArmResult
    with_saliency: ArmResult
    clean_difference: tuple[float, float, float]
    """with - without on clean episodes: (estimate, 2.5 %, 97.5 %)."""
    distracted_difference: tuple[float, float, float]
    """with - without under the distractor: (estimate, 2.5 %, 97.5 %)."""
    interval: str
    """What the interval is over, in words."""
    sentence: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        """The verdict as the report's opening lines."""
        unit = "%" if self.metric == "success rate" else ""

        def score(x: float) -> str:
            return f"{100 * x:.0f}{unit}" if unit else f"{x:.1f}"

        def diff(t: tuple[float, float, float]) -> str:
            scale = 100 if unit else 1
            return f"{scale * t[0]:+.1f}{unit} [{scale * t[1]:+.1f}, {scale * t[2]:+.1f}]"

        lines = [self.sentence, ""]
        returns = self.metric != "return"  # show returns beside a success rate
        header = f"{'arm':<24} {'clean':>8} {self.distractor:>14} {'kept':>6}"
        lines.append(header + ("   return clean / distracted" if returns else ""))
        for arm in (self.without, self.with_saliency):
            kept = "-" if arm.kept is None else f"{100 * arm.kept:.0f}%"
            line = f"{arm.name:<24} {score(arm.clean):>8} {score(arm.distracted):>14} {kept:>6}"
            if returns:
                line += f"   {arm.clean_return:.1f} / {arm.distracted_return:.1f}"
            lines.append(line)
        lines += [
            "",
            f"with - without saliency ({self.metric}; 95 % interval {self.interval}):",
            f"  clean {diff(self.clean_difference)}; "
            f"{self.distractor} {diff(self.distracted_difference)}",
        ]
        return "\n".join(lines)


def episode_scores(result: dict) -> tuple[str, np.ndarray]:
    """(metric, per-episode scores) of an ``eval_*.json``: success where there is one."""
    episodes = result.get("per_episode") or []
    if episodes and all(e.get("success") is not None for e in episodes):
        return "success rate", np.array([float(e["success"]) for e in episodes])
    return "return", np.array([float(e["episode_return"]) for e in episodes])


def paired_difference(
    without: np.ndarray, with_saliency: np.ndarray, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of with - without, and the 2.5 / 97.5 % percentiles of its bootstrap over
    episodes resampled jointly (the same episode seeds in both arms)."""
    n = min(len(without), len(with_saliency))
    if n == 0:
        return (float("nan"),) * 3
    delta = with_saliency[:n] - without[:n]
    rng = np.random.default_rng(seed)
    means = delta[rng.integers(0, n, (BOOTSTRAP_REPLICATES, n))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(delta.mean()), float(low), float(high)


def compute_verdict(arms: dict[str, dict[str, dict]], distractor: str) -> Verdict:
    """The verdict of two arms.

    Args:
        arms: ``{name: {"clean": eval, "distracted": eval}}``, the arm without saliency
            first, the arm with saliency second (the eval files' contents).
        distractor: the distractor's name, for the text.
    """
    if len(arms) != 2:
        raise ValueError(f"a verdict compares two arms, got {len(arms)}")
    (name_without, without), (name_with, with_) = arms.items()
    metric, clean_without = episode_scores(without["clean"])
    _, clean_with = episode_scores(with_["clean"])
    _, distracted_without = episode_scores(without["distracted"])
    _, distracted_with = episode_scores(with_["distracted"])

    def arm(name: str, evals: dict, clean: np.ndarray, distracted: np.ndarray) -> ArmResult:
        c, d = float(clean.mean()), float(distracted.mean())
        return ArmResult(
            name, c, d, d / c if c > 0 else None, int(len(clean)),
            float(evals["clean"]["return_mean"]), float(evals["distracted"]["return_mean"]),
        )  # fmt: skip

    a = arm(name_without, without, clean_without, distracted_without)
    b = arm(name_with, with_, clean_with, distracted_with)
    clean_diff = paired_difference(clean_without, clean_with)
    distracted_diff = paired_difference(distracted_without, distracted_with)
    interval = (
        f"over {min(len(distracted_without), len(distracted_with))} paired evaluation "
        "episodes (bootstrap), one training seed"
    )
    return Verdict(
        metric, distractor, a, b, clean_diff, distracted_diff, interval,
        _sentence(metric, distractor, a, b, distracted_diff),
    )  # fmt: skip


def _sentence(
    metric: str, distractor: str, a: ArmResult, b: ArmResult, diff: tuple[float, float, float]
) -> str:
    percent = metric == "success rate"

    def score(x: float) -> str:
        return f"{100 * x:.0f} %" if percent else f"{x:.1f}"

    def kept(arm: ArmResult) -> str:
        if arm.kept is None:
            return f"nothing (its clean {metric} is {score(arm.clean)})"
        return f"{100 * arm.kept:.0f} % ({score(arm.clean)} -> {score(arm.distracted)})"

    if diff[1] > 0:
        outcome = "saliency helped under the distractor (the interval lies above 0)"
    elif diff[2] < 0:
        outcome = "saliency hurt under the distractor (the interval lies below 0)"
    else:
        outcome = "no difference under the distractor beyond the interval"
    return (
        f"Under {distractor}, with saliency ({b.name}) the policy kept {kept(b)} of its clean "
        f"{metric}; without it ({a.name}), {kept(a)}: {outcome}."
    )


def read_arm(run: Path, distractor_file: str) -> dict[str, dict]:
    """``{"clean": ..., "distracted": ...}`` of a run directory's eval files."""
    return {
        "clean": json.loads((run / "eval_clean.json").read_text()),
        "distracted": json.loads((run / distractor_file).read_text()),
    }
