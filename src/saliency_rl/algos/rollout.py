"""The rollout loop every evaluation uses: a policy, its episodes, their summary.

``run_episodes`` runs a policy in one env, ``run_episodes_side_by_side`` in several at once
(batched inference), and ``summarize`` turns the episodes into the figures of an eval.json.
The SAC, BC and A2C trainers evaluate with it during training, and
``saliency_rl.evaluation`` after it; it imports nothing of saliency_rl, so any layer may use it.

One evaluation-seed rule: evaluation episode i is reset with ``EVAL_SEED + i``, in every
run, during training and after it (``saliency-rl evaluate``'s default), so every method and
training seed is scored on the same start states: a paired comparison. Training episodes
and demonstrations are seeded below it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from tqdm.auto import tqdm

if TYPE_CHECKING:
    import gymnasium as gym

EVAL_SEED = 100_000
"""Evaluation episode i is reset with ``EVAL_SEED + i``."""


@runtime_checkable
class Policy(Protocol):
    """What ``load_policy(run_dir, device)`` of every trainer module returns."""

    def act(self, obs: dict, deterministic: bool = True) -> np.ndarray:
        """One env observation dict in, one action out."""
        ...

    def reset(self) -> None:
        """A new episode starts: clear recurrent state and frame history."""
        ...

    def saliency(self, obs: dict) -> np.ndarray | None:
        """The [H, W] map in [0, 1] the policy used for the newest frame, or None."""
        ...


@dataclass(frozen=True)
class EpisodeResult:
    """One finished episode."""

    episode_return: float
    """Sum of rewards."""
    length: int
    """Environment steps."""
    success: bool | None
    """Whether ``info["success"]`` was ever true (Meta-World); None where the env has none."""
    cut: bool = False
    """Stopped by ``max_steps`` before the env ended it."""


def run_episodes(
    env: gym.Env,
    act: Policy | Callable[[Any], Any],
    episodes: int,
    seed: int = 0,
    progress: bool = False,
    *,
    deterministic: bool = True,
    observe: Callable[[int, dict], None] | None = None,
) -> tuple[list[EpisodeResult], float]:
    """Run ``episodes`` episodes, episode i reset with ``seed + i``.

    Args:
        act: a ``Policy`` (called as ``act(obs, deterministic=...)``) or any callable
            ``obs -> action``. The policy's ``reset()`` is called at every episode start,
            also when ``act`` is its bound ``act`` method.
        deterministic: passed to a ``Policy``; a plain callable decides for itself.
        observe: called as ``observe(episode, obs)`` with every observation, the first of
            each episode and the last included (videos use it).

    Returns:
        The episodes and the environment steps per second over all of them (policy included).
    """
    policy = act if isinstance(act, Policy) else getattr(act, "__self__", None)
    reset = getattr(policy, "reset", None) if policy is not None else None
    if isinstance(act, Policy):
        choose = lambda obs: act.act(obs, deterministic=deterministic)  # noqa: E731
    else:
        choose = act
    return run_episodes_side_by_side(
        [env],
        lambda slots, observations: [choose(observations[0])],
        episodes,
        seed,
        reset=None if not callable(reset) else lambda slot: reset(),
        progress=progress,
        observe=observe,
    )


def run_episodes_side_by_side(
    envs: Sequence[gym.Env],
    act_many: Callable[[list[int], list[dict]], Sequence[np.ndarray]],
    episodes: int,
    seed: int = 0,
    *,
    reset: Callable[[int], None] | None = None,
    progress: bool = False,
    observe: Callable[[int, dict], None] | None = None,
    max_steps: int | None = None,
) -> tuple[list[EpisodeResult], float]:
    """``run_episodes`` with ``len(envs)`` episodes in flight, for batched inference.

    Episode i is reset with ``seed + i`` in whichever env is free, so a policy whose action
    depends only on its own episode gets the episodes of ``run_episodes`` (batched network
    calls may differ from single ones in the last bits of a float).

    Args:
        act_many: ``act_many(slots, observations)``: one action per observation, where
            ``slots[j]`` is the index of the env ``observations[j]`` came from (a policy
            keeps recurrent state per slot).
        reset: called as ``reset(slot)`` when a new episode starts in env ``slot``.
        observe: called as ``observe(episode, obs)`` with every observation (as in
            ``run_episodes``).
        max_steps: cut an episode the env has not ended after this many steps (``cut``).

    Returns:
        The episodes in episode order, and environment steps per second over all of them.
    """
    results: list[EpisodeResult | None] = [None] * episodes
    running: dict[int, dict[str, Any]] = {}  # env index -> the episode it is playing
    started = 0

    def start(slot: int) -> None:
        nonlocal started
        obs, _ = envs[slot].reset(seed=seed + started)
        if reset is not None:
            reset(slot)
        if observe is not None:
            observe(started, obs)
        running[slot] = {"episode": started, "obs": obs, "total": 0.0, "length": 0, "success": None}
        started += 1

    steps, clock = 0, time.perf_counter()
    for slot in range(min(len(envs), episodes)):
        start(slot)
    with tqdm(total=episodes, desc="episodes", disable=not progress, dynamic_ncols=True) as bar:
        while running:
            slots = sorted(running)
            actions = act_many(slots, [running[slot]["obs"] for slot in slots])
            for slot, action in zip(slots, actions, strict=True):
                episode = running[slot]
                obs, reward, terminated, truncated, info = envs[slot].step(action)
                if observe is not None:
                    observe(episode["episode"], obs)
                episode["obs"] = obs
                episode["total"] += float(reward)
                episode["length"] += 1
                if "success" in info:
                    episode["success"] = bool(episode["success"]) or bool(info["success"])
                ended = bool(terminated or truncated)
                if ended or (max_steps is not None and episode["length"] >= max_steps):
                    results[episode["episode"]] = EpisodeResult(
                        episode["total"], episode["length"], episode["success"], cut=not ended
                    )
                    steps += episode["length"]
                    del running[slot]
                    bar.update()
                    if started < episodes:
                        start(slot)
    finished = [result for result in results if result is not None]
    return finished, steps / max(time.perf_counter() - clock, 1e-9)


def summarize(results: list[EpisodeResult]) -> dict[str, Any]:
    """Mean and std of return, mean length, success rate (where the env reports success)."""
    returns = np.array([r.episode_return for r in results], dtype=np.float64)
    summary: dict[str, Any] = {
        "episodes": len(results),
        "return_mean": float(returns.mean()) if len(returns) else float("nan"),
        "return_std": float(returns.std()) if len(returns) else float("nan"),
        "length_mean": float(np.mean([r.length for r in results])) if results else float("nan"),
    }
    if any(r.cut for r in results):
        summary["cut"] = sum(r.cut for r in results)
    successes = [r.success for r in results if r.success is not None]
    if successes:
        summary["success_rate"] = float(np.mean(successes))
    summary["per_episode"] = [asdict(r) for r in results]
    return summary
