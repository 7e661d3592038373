"""An A2C/ACKTR run's policy: loading it, and the evaluation games it plays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from saliency_rl.algos.a2c import A2CAgent
from saliency_rl.algos.rollout import EVAL_SEED, run_episodes_side_by_side, summarize
from saliency_rl.devices import resolve_device
from saliency_rl.runs import Run


def evaluate_a2c(
    agent: A2CAgent,
    env_spec: str,
    *,
    episodes: int,
    seed: int = EVAL_SEED,
    deterministic: bool = False,
    max_steps: int = 27_000,
) -> dict[str, Any]:
    """Play ``episodes`` full games (preset ``atari-eval``) side by side; unclipped scores.

    Game i is seeded ``seed + i``; one batched network call per step for all the games
    still running. A game still running after ``max_steps`` agent steps is cut and counted
    in ``cut``. Returns ``summarize``'s dict with the scores' ``min`` and ``max``.
    """
    from saliency_rl.envs import make_env

    envs = [make_env(env_spec, preset="atari-eval", seed=seed + i) for i in range(episodes)]
    generator = torch.Generator(agent.device).manual_seed(seed)

    def act_many(slots: list[int], observations: list[dict]) -> list[int]:
        batch = torch.from_numpy(np.stack([o["rgb"] for o in observations])).to(agent.device)
        actions = agent.act(batch, deterministic=deterministic, generator=generator)
        return [int(a) for a in actions.cpu().numpy()]

    agent.net.eval()
    try:
        results, _ = run_episodes_side_by_side(envs, act_many, episodes, seed, max_steps=max_steps)
    finally:
        agent.net.train()
        for env in envs:
            env.close()
    summary = summarize(results)
    scores = [r.episode_return for r in results]
    summary.update(
        cut=sum(r.cut for r in results),
        min=float(min(scores)),
        max=float(max(scores)),
        policy="deterministic" if deterministic else "sampled",
        env_preset="atari-eval",
        seed=seed,
        max_steps=max_steps,
    )
    return summary


class A2CPolicy:
    """A trained A2C/ACKTR actor-critic playing one game (the shared Policy interface).

    Observations are those of ``make_env(run's env, **env_options)``: ``obs["rgb"]`` uint8
    (4, 84, 84), four stacked grey frames (the frame stack lives in the env, so
    :meth:`reset` has nothing to clear).
    """

    def __init__(self, net: torch.nn.Module, device: torch.device, seed: int = 0) -> None:
        self.net, self.device = net.eval(), device
        self.generator = torch.Generator(device).manual_seed(seed)

    def reset(self) -> None:
        """A new episode: nothing to clear (no recurrent state)."""

    def _frames(self, obs: dict) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(obs["rgb"]))[None].to(self.device)

    @torch.no_grad()
    def act(self, obs: dict, deterministic: bool = True) -> np.ndarray:
        """One observation dict -> the action (a 0-d int64 array)."""
        logits, _, _ = self.net(self._frames(obs))
        if deterministic:
            action = logits.argmax(-1)
        else:
            action = torch.multinomial(torch.softmax(logits, -1), 1, generator=self.generator)
        return np.asarray(int(action.reshape(-1)[0]), dtype=np.int64)

    @torch.no_grad()
    def saliency(self, obs: dict) -> np.ndarray | None:
        """The attention mask of the newest frame, upsampled to the frame's (H, W), in [0, 1];
        None for attention mode ``none``."""
        frames = self._frames(obs)
        mask = self.net.mask(frames)
        if mask is None:
            return None
        size = tuple(frames.shape[-2:])
        up = torch.nn.functional.interpolate(mask, size=size, mode="bilinear", align_corners=False)
        return up[0, 0].clamp(0, 1).cpu().numpy()


def load_policy(run_dir: str | Path, device: str | torch.device = "cpu") -> A2CPolicy:
    """The latest weights of an A2C or ACKTR run as an :class:`A2CPolicy`."""
    from saliency_rl.algos.a2c import ActorCritic

    torch_device = resolve_device(device)
    config, weights = Run.open(run_dir, ("a2c", "acktr")).load_model(torch_device)
    kwargs = config["kwargs"]
    net = ActorCritic(kwargs["num_actions"], attention=kwargs["attention"])
    net.load_state_dict(weights)
    seed = int(config.get("a2c", {}).get("seed", 0))
    return A2CPolicy(net.to(torch_device), torch_device, seed)
