"""A SAC run's policy: the trained agent acting on env observations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from saliency_rl.algos.sac import SACAgent, SACConfig
from saliency_rl.algos.sac_inputs import StepInputs
from saliency_rl.algos.sac_setup import build_agent, build_inputs, make_run_env
from saliency_rl.devices import resolve_device
from saliency_rl.runs import Run


class SACPolicy:
    """A SAC agent's deterministic (or sampled) policy on env observations.

    ``act(obs)`` maps one observation dict to one action in the env's bounds; it computes
    the maps / features of every stacked frame itself, so it needs no episode history
    (``reset`` has nothing to clear). ``saliency(obs)``: the newest frame's map in [0, 1]
    that the policy used, or None where it uses none.
    """

    def __init__(
        self, agent: SACAgent, inputs: StepInputs, low: np.ndarray, high: np.ndarray
    ) -> None:
        self.agent, self.inputs = agent, inputs
        self.low, self.high = low.astype(np.float32), high.astype(np.float32)
        self.generator = torch.Generator(agent.device).manual_seed(0)

    def reset(self) -> None:
        """Nothing to clear: every call computes its inputs from the observation alone."""

    def act(self, obs: dict, deterministic: bool = True) -> np.ndarray:
        stored = self.inputs.first(obs)
        batch = {k: torch.from_numpy(np.asarray(v))[None] for k, v in stored.items()}
        action = self.agent.act(batch, deterministic, self.generator)[0].cpu().numpy()
        return scale_action(action, self.low, self.high)

    def saliency(self, obs: dict) -> np.ndarray | None:
        if not self.inputs.needs_maps:
            return None
        self.inputs.first(obs)
        return self.inputs.newest_map()


def scale_action(action: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """[-1, 1] -> [low, high] per dimension."""
    return (low + (action + 1.0) * 0.5 * (high - low)).astype(np.float32)


def load_policy(run_dir: str | Path, device: str | torch.device = "cpu") -> SACPolicy:
    """The policy of a SAC run's latest checkpoint (its predictor / MultiMAE reloaded from
    the paths in config.json)."""
    run = Run.open(run_dir, ("sac",))
    saved = run.saved
    torch_device = resolve_device(device)
    _, weights = run.load_model(torch_device)
    config = SACConfig.from_json(saved["config"])
    env = make_run_env(saved["env"], saved["env_options"])
    try:
        inputs = build_inputs(
            config, env, saved.get("predictor"), saved.get("encoder_checkpoint"), torch_device
        )
        agent = build_agent(config, inputs, env.action_space.shape[0], torch_device)
        agent.load_state_dict(weights)
        return SACPolicy(agent, inputs, env.action_space.low, env.action_space.high)
    finally:
        env.close()
