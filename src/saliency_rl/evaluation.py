"""Rollouts: run a policy for whole episodes and measure return, success and speed.

Issue 5 grows this into evaluation under distractors with videos; today it runs episodes
for any gymnasium env and policy (``act(obs) -> action``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm


@dataclass(frozen=True)
class EpisodeResult:
    """One finished episode."""

    episode_return: float
    """Sum of rewards."""
    length: int
    """Environment steps."""
    success: bool | None
    """Whether ``info["success"]`` was ever true (Meta-World); None where the env has none."""


def run_episodes(
    env: gym.Env,
    act: Callable[[Any], Any],
    episodes: int,
    seed: int = 0,
    progress: bool = False,
) -> tuple[list[EpisodeResult], float]:
    """Run ``episodes`` episodes, episode i reset with ``seed + i``.

    Returns:
        The episodes and the environment steps per second over all of them (policy included).
    """
    results = []
    steps, start = 0, time.perf_counter()
    for i in tqdm(range(episodes), desc="episodes", disable=not progress, dynamic_ncols=True):
        obs, info = env.reset(seed=seed + i)
        total, length, success, has_success = 0.0, 0, False, False
        while True:
            obs, reward, terminated, truncated, info = env.step(act(obs))
            total += float(reward)
            length += 1
            if "success" in info:
                has_success = True
                success = success or bool(info["success"])
            if terminated or truncated:
                break
        steps += length
        results.append(EpisodeResult(total, length, success if has_success else None))
    return results, steps / max(time.perf_counter() - start, 1e-9)


def summarize(results: list[EpisodeResult]) -> dict[str, Any]:
    """Mean and std of return, mean length, success rate (where the env reports success)."""
    returns = np.array([r.episode_return for r in results], dtype=np.float64)
    summary: dict[str, Any] = {
        "episodes": len(results),
        "return_mean": float(returns.mean()) if len(returns) else float("nan"),
        "return_std": float(returns.std()) if len(returns) else float("nan"),
        "length_mean": float(np.mean([r.length for r in results])) if results else float("nan"),
    }
    successes = [r.success for r in results if r.success is not None]
    if successes:
        summary["success_rate"] = float(np.mean(successes))
    summary["per_episode"] = [asdict(r) for r in results]
    return summary
