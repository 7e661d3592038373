"""A BC run's policy: loading it, and its closed-loop rollouts in several envs at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from saliency_rl.algos.bc import BCConfig, BCPolicy, BCPolicyNet
from saliency_rl.algos.bc_data import load_encoder
from saliency_rl.algos.rollout import EVAL_SEED, run_episodes_side_by_side, summarize
from saliency_rl.devices import resolve_device
from saliency_rl.runs import Run

EVAL_SIDE_BY_SIDE = 10  # environments played at once in evaluate_bc (batched encoder calls)


def evaluate_bc(
    policy: BCPolicy,
    env_spec: str,
    env_options: dict[str, Any],
    episodes: int,
    *,
    seed: int = EVAL_SEED,
    distractor: str | None = None,
    progress: bool = False,
    side_by_side: int = EVAL_SIDE_BY_SIDE,
) -> dict[str, Any]:
    """Closed-loop rollouts: episode i reset with ``seed + i``; ``summarize``'s dict.

    ``side_by_side`` environments play at once, each with its own fork of ``policy`` (its
    own LSTM history and action chunk) and one batched encoder call for all of them per
    step: the frozen MultiMAE and the saliency predictor cost about as much for 10 frames
    as for one on a CPU, and they are half of a step's time played one at a time.
    """
    from saliency_rl.envs import make_env

    options = {k: v for k, v in env_options.items() if k != "seed"}
    if distractor is not None:
        options["distractor"] = distractor
    count = max(1, min(side_by_side, episodes))
    envs, forks = [], [policy.fork() for _ in range(count)]
    try:
        for _ in range(count):
            envs.append(make_env(env_spec, seed=seed, **options))

        def act_many(slots: list[int], observations: list[dict]) -> list[np.ndarray]:
            states = policy.states(observations)
            return [
                forks[slot].act_on_state(state) for slot, state in zip(slots, states, strict=True)
            ]

        results, _ = run_episodes_side_by_side(
            envs,
            act_many,
            episodes,
            seed,
            reset=lambda slot: forks[slot].reset(),  # a new episode: empty LSTM history
            progress=progress,
        )
    finally:
        for env in envs:
            env.close()
    summary = summarize(results)
    summary["seed"] = seed
    summary["distractor"] = distractor or "clean"
    return summary


def load_policy(run_dir: str | Path, device: str | torch.device = "cpu") -> BCPolicy:
    """The policy of a BC run's latest checkpoint, with its encoder and predictor reloaded."""
    run = Run.open(run_dir, ("bc",))
    saved = run.saved
    torch_device = resolve_device(device)
    ckpt_config, weights = run.load_model(torch_device)
    frozen = load_encoder(
        saved["encoder_checkpoint"], saved["encoder_mode"], saved.get("predictor"), torch_device
    )
    config = BCConfig.from_json(saved["config"])
    net = build_net(config, ckpt_config["state_dim"], ckpt_config["action_dim"]).to(torch_device)
    net.load_state_dict(weights)
    return BCPolicy(
        net,
        frozen,
        config,
        np.asarray(ckpt_config["action_low"], np.float32),
        np.asarray(ckpt_config["action_high"], np.float32),
    )


def build_net(config: BCConfig, state_dim: int, action_dim: int) -> BCPolicyNet:
    return BCPolicyNet(
        state_dim,
        action_dim,
        config.chunk,
        mlp_hidden=config.mlp_hidden,
        lstm_hidden=config.lstm_hidden,
        head_hidden=config.head_hidden,
    )
