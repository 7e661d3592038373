"""What a SAC run is built from: its env options, inputs, agent, precision and replay.

``train_sac`` and ``load_policy`` both build a run's parts from its config.json with these,
so a loaded policy is the trained one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from saliency_rl.algos.sac import (
    ENV_PRESETS,
    PixelObsEncoder,
    SACAgent,
    SACConfig,
    VectorObsEncoder,
)
from saliency_rl.algos.sac_inputs import StepInputs
from saliency_rl.models.pixel_cnn import PixelCNN
from saliency_rl.precision import PrecisionChoice, decide_precision
from saliency_rl.runs import RunError

# precision auto times the networks at the run's batch size up to this: about 3 s for the
# drq networks at 84x84 on one CPU thread, and the same winner as at batch 512 (bf16 2.0x
# faster at 64, 3.0x at 512 here; benchmarks/results/sac_speed_drq.md).
PRECISION_TRIAL_BATCH = 64


def env_options_for(spec: str, preset: str, env_options: dict[str, Any] | None) -> dict:
    """make_env options: the caller's, with the env preset the SAC preset implies for this
    suite (visarl -> visarl-dmc / visarl-metaworld, rad-curl-100k -> dmc-100k) unless the
    caller named one (``"preset": None`` asks for none)."""
    from saliency_rl.envs import parse_spec

    options = dict(env_options or {})
    if "preset" not in options:
        implied = ENV_PRESETS.get(preset, {}).get(parse_spec(spec).suite)
        if implied:
            options["preset"] = implied
    elif options["preset"] is None:
        del options["preset"]
    return options


def make_run_env(spec: str, options: dict[str, Any], seed: int | None = None) -> Any:
    from saliency_rl.envs import make_env

    return make_env(spec, seed=seed, **options)


def observation_geometry(env: Any) -> tuple[int, int, int]:
    """(frames k, channels per frame C, image side) of an env's observations."""
    from saliency_rl.envs.wrappers import frame_channels

    channels = frame_channels(env)
    total, height, width = env.observation_space["rgb"].shape
    if height != width:
        raise RunError(f"SAC expects square frames, the environment renders {height}x{width}")
    return total // channels, channels, height


def _load_predictor(path: str | Path | None, device: torch.device, env_spec: str | None) -> Any:
    if path is None:
        return None
    from saliency_rl.models.attention_saliency import load_saliency_source

    return load_saliency_source(path, device=device, env_spec=env_spec)


def _load_frozen(config: SACConfig, checkpoint: str | Path | None, device: torch.device) -> Any:
    if config.encoder != "multimae":
        if checkpoint is not None:
            raise RunError("--encoder-checkpoint is only used by --encoder multimae")
        return None
    if checkpoint is None:
        raise RunError(
            "--encoder multimae needs the pretrained MultiMAE: pass --encoder-checkpoint CKPT "
            "(a checkpoint or run directory of `saliency-rl pretrain`)"
        )
    from saliency_rl.models.frozen_encoder import FrozenMultiMAEEncoder

    # The constructor checks that the mode matches what the model was pretrained on.
    return FrozenMultiMAEEncoder.load(checkpoint, mode=config.saliency_mode, device=device)


def build_agent(
    config: SACConfig,
    inputs: StepInputs,
    action_dim: int,
    device: torch.device,
    precision: str = "fp32",
) -> SACAgent:
    """The agent of a config (networks initialised from torch's global RNG); ``precision``
    is the chosen one (fp32 / bf16; ``choose_sac_precision`` resolves auto)."""
    if config.encoder == "cnn":
        encoder: torch.nn.Module = PixelObsEncoder(
            PixelCNN(
                config.saliency_mode,
                frames=inputs.k,
                image_size=inputs.size,
                frame_channels=inputs.channels,
                num_layers=config.conv_layers,
                num_filters=config.conv_filters,
            )
        )
    else:
        encoder = VectorObsEncoder(inputs.fields["features"][0][0])
    c = config
    return SACAgent(
        encoder,
        action_dim,
        device=device,
        feature_dim=c.feature_dim,
        hidden_dim=c.hidden_dim,
        hidden_layers=c.hidden_layers,
        discount=c.discount,
        actor_lr=c.actor_lr,
        actor_betas=tuple(c.actor_betas),
        critic_lr=c.critic_lr,
        critic_betas=tuple(c.critic_betas),
        alpha_lr=c.alpha_lr,
        alpha_betas=tuple(c.alpha_betas),
        init_temperature=c.init_temperature,
        critic_tau=c.critic_tau,
        encoder_tau=c.encoder_tau,
        target_update_every=c.target_update_every,
        actor_update_every=c.actor_update_every,
        log_std_bounds=(c.log_std_min, c.log_std_max),
        augment_pad=c.augment_pad(inputs.size),
        target_augs=c.target_augs,
        q_augs=c.q_augs,
        target_encoder=c.target_encoder,
        curl=c.aux == "curl",
        curl_coef=c.curl_coef,
        precision=precision,
        generator=torch.Generator(device).manual_seed(c.seed + 1),
    )


def choose_sac_precision(
    config: SACConfig, agent: SACAgent, inputs: StepInputs, device: torch.device
) -> PrecisionChoice:
    """The precision of a new run: ``config.precision``, with ``auto`` timed on the agent's
    own encoder and critic (``SACAgent.precision_trial``) at up to PRECISION_TRIAL_BATCH."""
    batch = min(config.batch_size, PRECISION_TRIAL_BATCH)
    name = (
        f"{config.encoder} {config.saliency_mode} encoder + critic forward and backward, "
        f"batch {batch} x {config.q_augs} (+ {config.target_augs} without gradients), "
        f"{inputs.size}x{inputs.size}, torch threads {torch.get_num_threads()}"
    )
    return decide_precision(
        config.precision, device, lambda: agent.precision_trial(inputs.fields, batch),
        trial_name=name,
    )  # fmt: skip


def build_inputs(
    config: SACConfig,
    env: Any,
    predictor: str | None,
    encoder_checkpoint: str | None,
    device: torch.device,
    env_spec: str | None = None,
) -> StepInputs:
    """The inputs of ``config``'s mode; ``env_spec``: warn if the predictor was trained on
    another environment."""
    frames, channels, size = observation_geometry(env)
    return StepInputs(
        config.encoder,
        config.saliency_mode,
        frames=frames,
        frame_channels=channels,
        image_size=size,
        predictor=_load_predictor(predictor, device, env_spec),
        frozen=_load_frozen(config, encoder_checkpoint, device),
        device=device,
    )


def eval_inputs(inputs: StepInputs) -> StepInputs:
    """Inputs of the same models, with their own frame history (none: the policy is
    stateless), so evaluation leaves the training stacks untouched."""
    i = inputs
    return StepInputs(
        i.encoder, i.mode, frames=i.k, frame_channels=i.channels, image_size=i.size,
        predictor=i.predictor, frozen=i.frozen, device=i.device,
    )  # fmt: skip


def build_replay(config: SACConfig, inputs: StepInputs, action_dim: int) -> Any:
    from saliency_rl.data.replay import ReplayBuffer

    # A run writes at most 2 * total_steps + 1 observations (steps, and a first one per
    # episode), so a short run does not allocate a 1M-frame buffer. The bound never changes
    # which observations are evicted, so a resume with a larger total_steps stays exact.
    capacity = max(2, min(config.replay_size, 2 * config.total_steps + 2))
    return ReplayBuffer(capacity, inputs.fields, action_dim, seed=config.seed + 3)
