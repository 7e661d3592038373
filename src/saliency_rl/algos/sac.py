"""SAC from pixels, DrQ-v2 style, with RAD, DrQ and CURL as options: ``SACAgent``, ``SACConfig``.

The conventions of the pixel-SAC literature (SAC-AE, RAD, CURL, DrQ-v2):

- the encoder (ViSaRL's CNN, or nothing over frozen MultiMAE features) is trained by the
  critic's loss only; the actor sees its features detached;
- one encoder forward per batch serves both Q functions (and the actor, detached); the next
  observations are encoded by the same encoder without gradients (DrQ-v2);
- double Q with target Q networks moved by Polyak averaging every ``target_update_every``
  updates; learned temperature; tanh-squashed Gaussian actions;
- heads as ViSaRL's Table VI: a linear projection to 100 with LayerNorm (and tanh, as
  DrQ-v2), then 3 hidden layers of 1024;
- RAD: every sampled batch is randomly translated (``algos.rad``); DrQ: the same, with the
  Q target averaged over K translations of the next observation and the Q loss over M
  translations of the observation (Kostrikov et al. 2021, Eq. 3 and 4; K = M = 1 is RAD);
  CURL: RAD plus a contrastive loss between two translations of the same observation with
  a momentum key encoder (``algos.curl``), added to the critic's loss so one backward pass
  trains both;
- n-step returns (DrQ-v2: 3) come from the sampler (``algos.nstep``), not the agent;
- precision: the networks run under bf16 autocast where ``precision`` is bf16
  (``saliency_rl.precision``); Q targets, log-probabilities, the temperature and every loss
  stay fp32.

``update(batch)`` returns a dict of metrics as 0-d tensors (no device sync per update; the
trainer converts them when it logs). The agent never logs by itself.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from saliency_rl.algos.curl import BilinearInfoNCE
from saliency_rl.algos.rad import shift_fields
from saliency_rl.data.replay import Batch
from saliency_rl.models.frozen_encoder import ENCODER_MODES
from saliency_rl.models.pixel_cnn import SALIENCY_MODES
from saliency_rl.precision import CHOSEN, PRECISIONS, autocast
from saliency_rl.runs import RunError, check_settings

ENCODERS = ("cnn", "multimae")
AUX_LOSSES = ("none", "rad", "drq", "curl")
AUGMENTED = ("rad", "drq", "curl")  # the aux settings that shift every batch


# ---------------------------------------------------------------------- config
@dataclass
class SACConfig:
    """Every setting of a SAC run (presets: ``SAC_PRESETS``)."""

    encoder: str = "cnn"
    """cnn: ViSaRL's CNN trained by the critic; multimae: frozen MultiMAE features."""
    saliency_mode: str = "rgb"
    """cnn: rgb, saliency, rgb_x_saliency, rgbs; multimae: rgb, rgb+saliency-pretrain-only,
    rgb+saliency (what the MultiMAE was pretrained on, and sees at policy time)."""
    aux: str = "none"
    """none; rad (random translation of every batch); drq (rad, with the target averaged over
    target_augs shifts and the Q loss over q_augs shifts); curl (RAD + contrastive loss).
    cnn only."""
    total_steps: int = 100_000
    """Agent steps (policy decisions) to train; environment frames = steps * action repeat."""
    init_steps: int = 1000
    """First steps with uniformly random actions, before any update (RAD/CURL: 1000)."""
    updates_per_step: int = 1
    """Gradient updates at every update step once init_steps are done."""
    update_every: int = 1
    """Agent steps between update steps (DrQ-v2: 2, one update every second step)."""
    batch_size: int = 128
    """Transitions per update."""
    replay_size: int = 1_000_000
    """Replay capacity in observations."""
    discount: float = 0.99
    """Discount factor gamma."""
    nstep: int = 1
    """Rewards summed before bootstrapping: n-step returns (SAC, DrQ: 1; DrQ-v2: 3)."""
    actor_lr: float = 1e-4
    """Actor Adam learning rate."""
    actor_betas: tuple[float, float] = (0.9, 0.999)
    """Actor Adam betas."""
    critic_lr: float = 1e-3
    """Critic (and encoder, and CURL's W) Adam learning rate."""
    critic_betas: tuple[float, float] = (0.9, 0.999)
    """Critic Adam betas."""
    alpha_lr: float = 3e-4
    """Temperature Adam learning rate."""
    alpha_betas: tuple[float, float] = (0.5, 0.999)
    """Temperature Adam betas."""
    init_temperature: float = 0.1
    """Initial entropy temperature alpha (SAC-AE, RAD, CURL: 0.1)."""
    critic_tau: float = 0.05
    """Polyak rate of the target Q networks (target = (1 - tau) target + tau online)."""
    encoder_tau: float = 0.05
    """Polyak rate of CURL's momentum key encoder."""
    target_encoder: bool = False
    """Target Q networks get their own copy of the encoder, moved with critic_tau (SAC-AE,
    DrQ); False: the online encoder encodes the next observations (DrQ-v2)."""
    target_update_every: int = 2
    """Updates between target network moves."""
    actor_update_every: int = 2
    """Updates between actor and temperature updates (SAC-AE, RAD, CURL: 2)."""
    feature_dim: int = 100
    """Size of the LayerNorm projection that starts the actor and the critic."""
    hidden_dim: int = 1024
    """Width of the hidden layers of the actor and the Q functions."""
    hidden_layers: int = 3
    """Hidden layers of the actor and of each Q function."""
    log_std_min: float = -10.0
    """Lower bound of the policy's log standard deviation."""
    log_std_max: float = 2.0
    """Upper bound of the policy's log standard deviation."""
    conv_layers: int = 11
    """Conv layers of the CNN (ViSaRL: 11; SAC-AE/RAD/CURL: 4)."""
    conv_filters: int = 32
    """Filters per conv layer."""
    shift_pad: int = 4
    """rad / drq / curl: largest translation in pixels (DrQ: 4 on 84x84)."""
    shift_pad_at: int = 0
    """Frame side at which shift_pad holds; at other sides the pad scales with the side,
    rounded (drq: 84, so 3 at 64 px). 0: shift_pad pixels at every side."""
    target_augs: int = 1
    """DrQ's K: shifts of the next observation whose Q targets are averaged (DrQ: 2)."""
    q_augs: int = 1
    """DrQ's M: shifts of the observation whose Q losses are averaged (DrQ: 2)."""
    curl_coef: float = 1.0
    """CURL: weight of the contrastive loss beside the critic's."""
    precision: str = "fp32"
    """fp32; bf16 (autocast of the networks' matrix work); auto: the faster of the two in a
    forward + backward of this run's networks, timed at start (bf16 on CUDA where the GPU
    has it). The choice and the timings go into config.json ("precision")."""
    seed: int = 0
    """Seeds the networks, the exploration, the replay sampling and the environments."""
    eval_every: int = 10_000
    """Agent steps between evaluations (0: only at the end)."""
    eval_episodes: int = 10
    """Episodes per evaluation, deterministic policy (0: no evaluation)."""
    checkpoint_every: int = 10_000
    """Agent steps between checkpoints (written at the end of the episode that crosses it)."""
    log_every: int = 1000
    """Agent steps between metrics rows."""

    def validate(self) -> SACConfig:
        """Raise RunError naming the first setting out of range; return self."""
        check_settings(
            self, choices={"encoder": ENCODERS, "aux": AUX_LOSSES, "precision": PRECISIONS}
        )
        modes = SALIENCY_MODES if self.encoder == "cnn" else ENCODER_MODES
        if self.saliency_mode not in modes:
            raise RunError(
                f"saliency mode {self.saliency_mode!r} is not one of the {self.encoder} "
                f"encoder's: {', '.join(modes)}"
            )
        if self.aux != "none" and self.encoder != "cnn":
            raise RunError(
                f"--aux {self.aux} augments pixels and needs --encoder cnn; frozen MultiMAE "
                "features are vectors computed once per step"
            )
        check_settings(
            self,
            positive=(
                "total_steps", "updates_per_step", "update_every", "batch_size", "replay_size",
                "nstep", "target_update_every", "actor_update_every", "feature_dim", "hidden_dim",
                "conv_layers", "conv_filters", "target_augs", "q_augs", "log_every",
                "checkpoint_every",
            ),
            non_negative=(
                "init_steps", "hidden_layers", "shift_pad", "shift_pad_at", "eval_every",
                "eval_episodes",
            ),
        )  # fmt: skip
        if (self.target_augs > 1 or self.q_augs > 1) and self.aux not in AUGMENTED:
            raise RunError(
                f"target_augs / q_augs average over random shifts; with --aux {self.aux} "
                f"there are none: use --aux {' or '.join(AUGMENTED)}"
            )
        if self.replay_size < 2:
            raise RunError(f"replay_size must be >= 2, got {self.replay_size}")
        for name in ("critic_tau", "encoder_tau"):
            if not 0 < getattr(self, name) <= 1:
                raise RunError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if not 0 <= self.discount <= 1:
            raise RunError(f"discount must be in [0, 1], got {self.discount}")
        return self

    def augment_pad(self, image_size: int) -> int:
        """The shift in pixels at frames of side ``image_size`` (0 without augmentation)."""
        if self.aux not in AUGMENTED:
            return 0
        if self.shift_pad_at == 0 or self.shift_pad == 0:
            return self.shift_pad
        return max(1, round(self.shift_pad * image_size / self.shift_pad_at))

    @property
    def method(self) -> str:
        """Short label for tables: sac-cnn-rgbs, sac-multimae-rgb+saliency, rad-cnn-rgb, ..."""
        algo = "sac" if self.aux == "none" else self.aux
        return f"{algo}-{self.encoder}-{self.saliency_mode}"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SACConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(obj) - names
        if unknown:
            raise RunError(f"unknown SAC settings {sorted(unknown)}; valid: {sorted(names)}")
        values = {k: tuple(v) if k.endswith("_betas") else v for k, v in obj.items()}
        return cls(**values)


SAC_PRESETS: dict[str, SACConfig] = {
    # ViSaRL (Liang, Thomason, Biyik) Table VI: discount 0.99, replay 1M, batch 128, actor
    # Adam 1e-4 (0.9, 0.999), temperature Adam 3e-4 (0.5, 0.999), target update every 2
    # steps with momentum 0.05, projection to 100 + LayerNorm, 3 hidden layers of 1024.
    # Table VI gives no critic learning rate: 1e-3, RAD's and CURL's (official RAD
    # scripts/run.sh: --critic_lr 1e-3; CURL Table 3: 1e-3 except cheetah 2e-4).
    "visarl": SACConfig(),
    # The DMC 100k benchmark settings of RAD (Laskin et al. 2020; official code's train.py
    # defaults and scripts/run.sh) and CURL (Srinivas et al. 2020, Table 3): batch 128, Adam
    # 1e-3 for actor and critic, temperature Adam 1e-4 (0.5, 0.999) from 0.1, Q target tau
    # 0.01 and encoder (key) tau 0.05 every 2 updates, actor every 2 updates, replay 100k,
    # 1000 random steps, 1024-wide heads. Their CNN is 4 layers and 50 features; we keep
    # ViSaRL's encoder and heads unless told (--conv-layers 4 --feature-dim 50). Action
    # repeat per task comes from the env preset dmc-100k (84x84, 3 frames).
    "rad-curl-100k": SACConfig(
        batch_size=128,
        replay_size=100_000,
        actor_lr=1e-3,
        critic_lr=1e-3,
        alpha_lr=1e-4,
        critic_tau=0.01,
        encoder_tau=0.05,
        init_steps=1000,
    ),
    # DrQ (Kostrikov, Yarats, Fergus, ICLR 2021) on the PlaNet / DMC-100k benchmark: the
    # hyper-parameter table of its appendix, with the official code (denisyarats/drq,
    # config.yaml and drq.py) where the table is silent. Minibatch 512 (the code's default
    # is 128; its README: 512 reproduces the paper), Adam lr 1e-3 with betas (0.9, 0.999)
    # for actor, critic and temperature, initial temperature 0.1, discount 0.99, critic
    # target soft-update rate 0.01 every 2 updates and the target critic holding its own
    # encoder (the code soft-updates the whole critic, encoder included), actor update
    # every 2, actor log-std bounds [-10, 2], replay 100k, 1000 seed steps, K = M = 2
    # (Eq. 3 and 4: targets averaged over 2 shifts of the next observation, Q losses over
    # 2 shifts of the observation), shift pad 4 at 84x84 (replicate pad + random crop).
    # Networks: encoder of 4 conv layers 3x3 of 32 filters, stride 2 then 1, 35x35x32 at
    # 84 px; a Linear to 50 + LayerNorm + tanh; heads of 2 hidden layers of 1024. The env
    # preset dmc-100k gives 84x84 frames, 3 stacked, and the action repeat per task (DrQ's
    # table: cartpole 8, finger 2, walker 2, ball_in_cup 4, others 4).
    # Where we differ, and why:
    # - frames enter as x / 255 - 0.5 (DrQ-v2), not x / 255: one PixelCNN serves every
    #   preset; the constant shift is absorbed by the first convolution's bias;
    # - the M Q losses are averaged (the paper's Eq. 4), where the code sums them; Adam's
    #   step does not change with a constant scale of the loss (up to its epsilon);
    # - the actor and the critic each have their own Linear + LayerNorm + tanh on shared
    #   convolutions, the actor's gradient stopped at the convolutions: DrQ's tied conv
    #   weights and separate heads, written once;
    # - actor and target updates count gradient updates, DrQ's count env steps: the same
    #   with one update per step;
    # - precision auto: bf16 autocast where it is faster (CPUs with AMX / AVX512-BF16,
    #   GPUs since Ampere); DrQ trains in fp32. Pass --precision fp32 to match it.
    "drq": SACConfig(
        aux="drq",
        batch_size=512,
        replay_size=100_000,
        init_steps=1000,
        discount=0.99,
        actor_lr=1e-3,
        actor_betas=(0.9, 0.999),
        critic_lr=1e-3,
        critic_betas=(0.9, 0.999),
        alpha_lr=1e-3,
        alpha_betas=(0.9, 0.999),
        init_temperature=0.1,
        critic_tau=0.01,
        target_update_every=2,
        target_encoder=True,
        actor_update_every=2,
        log_std_min=-10.0,
        log_std_max=2.0,
        conv_layers=4,
        conv_filters=32,
        feature_dim=50,
        hidden_dim=1024,
        hidden_layers=2,
        shift_pad=4,
        shift_pad_at=84,
        target_augs=2,
        q_augs=2,
        precision="auto",
    ),
}
# The env preset each SAC preset implies, per suite (None: make_env's defaults).
ENV_PRESETS: dict[str, dict[str, str]] = {
    "visarl": {"dmc": "visarl-dmc", "metaworld": "visarl-metaworld"},
    "rad-curl-100k": {"dmc": "dmc-100k"},
    "drq": {"dmc": "dmc-100k"},
}


def sac_config(preset: str = "visarl", **overrides: Any) -> SACConfig:
    """A validated config: preset ``preset`` with ``overrides`` (None values are ignored)."""
    if preset not in SAC_PRESETS:
        raise RunError(f"unknown SAC preset {preset!r}; valid presets: {', '.join(SAC_PRESETS)}")
    values = {k: v for k, v in overrides.items() if v is not None}
    names = {f.name for f in dataclasses.fields(SACConfig)}
    unknown = set(values) - names
    if unknown:
        raise RunError(f"unknown SAC settings {sorted(unknown)}; valid: {sorted(names)}")
    return dataclasses.replace(SAC_PRESETS[preset], **values).validate()


# ---------------------------------------------------------------------- networks
def mlp(inputs: int, hidden: int, layers: int, outputs: int) -> nn.Sequential:
    """``layers`` hidden Linear + ReLU of width ``hidden``, then a Linear to ``outputs``."""
    modules: list[nn.Module] = []
    for _ in range(layers):
        modules += [nn.Linear(inputs, hidden), nn.ReLU(inplace=True)]
        inputs = hidden
    modules.append(nn.Linear(inputs, outputs))
    return nn.Sequential(*modules)


def projection(inputs: int, feature_dim: int) -> nn.Sequential:
    """ViSaRL's projection to ``feature_dim`` with LayerNorm; tanh bounds it (DrQ-v2)."""
    return nn.Sequential(nn.Linear(inputs, feature_dim), nn.LayerNorm(feature_dim), nn.Tanh())


def orthogonal_init(module: nn.Module) -> None:
    """Orthogonal weights, zero biases (DrQ-v2; ReLU gain for convolutions)."""
    if isinstance(module, nn.Linear):
        nn.init.orthogonal_(module.weight.data)
        module.bias.data.fill_(0.0)
    elif isinstance(module, nn.Conv2d):
        nn.init.orthogonal_(module.weight.data, nn.init.calculate_gain("relu"))
        module.bias.data.fill_(0.0)


class Actor(nn.Module):
    """Encoder features (N, R) -> tanh-squashed Gaussian over actions in [-1, 1]^A."""

    def __init__(
        self,
        repr_dim: int,
        action_dim: int,
        feature_dim: int,
        hidden_dim: int,
        hidden_layers: int,
        log_std_bounds: tuple[float, float],
    ) -> None:
        super().__init__()
        self.trunk = projection(repr_dim, feature_dim)
        self.policy = mlp(feature_dim, hidden_dim, hidden_layers, 2 * action_dim)
        self.log_std_min, self.log_std_max = log_std_bounds

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean (N, A), log_std (N, A)) of the Gaussian before the tanh, fp32 also under
        bf16 autocast: the sampling and log-probability math stays fp32."""
        mu, log_std = self.policy(self.trunk(h)).float().chunk(2, dim=-1)
        # Squash log_std into its bounds smoothly (SAC-AE).
        log_std = torch.tanh(log_std)
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (log_std + 1)
        return mu, log_std

    def sample(
        self, h: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised action (N, A) in (-1, 1) and its log-probability (N, 1)."""
        mu, log_std = self(h)
        noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        u = mu + noise * log_std.exp()
        action = torch.tanh(u)
        log_prob = (-0.5 * noise.pow(2) - log_std).sum(-1, keepdim=True)
        log_prob = log_prob - 0.5 * math.log(2 * math.pi) * mu.shape[-1]
        # tanh's change of variables, in the numerically stable form of SpinningUp / CleanRL
        log_prob = log_prob - (2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1, keepdim=True)
        return action, log_prob


class Critic(nn.Module):
    """Encoder features (N, R) and actions (N, A) -> two Q values (N, 1) each."""

    def __init__(
        self, repr_dim: int, action_dim: int, feature_dim: int, hidden_dim: int, hidden_layers: int
    ) -> None:
        super().__init__()
        self.trunk = projection(repr_dim, feature_dim)
        self.q1 = mlp(feature_dim + action_dim, hidden_dim, hidden_layers, 1)
        self.q2 = mlp(feature_dim + action_dim, hidden_dim, hidden_layers, 1)

    def forward(self, h: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Q1, Q2 (N, 1), fp32 also under bf16 autocast (they make targets and losses)."""
        x = torch.cat([self.trunk(h), action], dim=-1)  # (N, F + A)
        return self.q1(x).float(), self.q2(x).float()


class PixelObsEncoder(nn.Module):
    """Observation dict -> CNN features: ``cnn(obs["rgb"], obs.get("saliency"))``."""

    def __init__(self, cnn: nn.Module) -> None:
        super().__init__()
        self.cnn = cnn
        self.output_dim = cnn.output_dim

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.cnn(obs.get("rgb"), obs.get("saliency"))


class VectorObsEncoder(nn.Module):
    """Observation dict -> its precomputed ``features`` (float32 (N, D)); nothing to train."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.output_dim = dim

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return obs["features"]


# ---------------------------------------------------------------------- the agent
class SACAgent:
    """SAC over an observation encoder, with optional RAD / DrQ augmentation and CURL loss.

    Args:
        encoder: observation dict -> (N, R) features; its parameters (if any) are trained
            by the critic's loss. ``encoder.output_dim`` is R.
        action_dim: A; actions are in [-1, 1]^A (the trainer rescales to the env's bounds).
        device: where the networks live.
        augment_pad: RAD / DrQ translation in pixels (0: no augmentation).
        target_augs, q_augs: DrQ's K and M (1: RAD); more than 1 needs augment_pad > 0.
        target_encoder: the target Q networks read their own, Polyak-averaged copy of the
            encoder (DrQ); else the online encoder's features of the next observations.
        curl: add CURL's contrastive loss (needs augment_pad > 0).
        precision: fp32 or bf16 (autocast of the updates' forwards; acting stays fp32).
        generator: torch Generator of the update's randomness (noise, augmentation);
            a fresh one seeded 0 when None.
        Other keyword arguments: as the SACConfig fields of the same name.
    """

    def __init__(
        self,
        encoder: nn.Module,
        action_dim: int,
        *,
        device: str | torch.device = "cpu",
        feature_dim: int = 100,
        hidden_dim: int = 1024,
        hidden_layers: int = 3,
        discount: float = 0.99,
        actor_lr: float = 1e-4,
        actor_betas: tuple[float, float] = (0.9, 0.999),
        critic_lr: float = 1e-3,
        critic_betas: tuple[float, float] = (0.9, 0.999),
        alpha_lr: float = 3e-4,
        alpha_betas: tuple[float, float] = (0.5, 0.999),
        init_temperature: float = 0.1,
        critic_tau: float = 0.05,
        encoder_tau: float = 0.05,
        target_update_every: int = 2,
        actor_update_every: int = 2,
        log_std_bounds: tuple[float, float] = (-10.0, 2.0),
        augment_pad: int = 0,
        target_augs: int = 1,
        q_augs: int = 1,
        target_encoder: bool = False,
        curl: bool = False,
        curl_coef: float = 1.0,
        precision: str = "fp32",
        generator: torch.Generator | None = None,
    ) -> None:
        if curl and augment_pad <= 0:
            raise RunError("CURL contrasts two translations of a frame: it needs augment_pad > 0")
        if (target_augs > 1 or q_augs > 1) and augment_pad <= 0:
            raise RunError("DrQ's K / M average over random shifts: they need augment_pad > 0")
        if precision not in CHOSEN:
            raise RunError(f"precision must be one of {', '.join(CHOSEN)}, got {precision!r}")
        self.device = torch.device(device)
        self.discount, self.critic_tau, self.encoder_tau = discount, critic_tau, encoder_tau
        self.target_update_every, self.actor_update_every = target_update_every, actor_update_every
        self.augment_pad, self.curl_coef = augment_pad, curl_coef
        self.target_augs, self.q_augs, self.precision = target_augs, q_augs, precision
        self.target_entropy = -float(action_dim)
        self.generator = generator or torch.Generator(self.device).manual_seed(0)
        repr_dim = encoder.output_dim
        self.encoder = encoder.to(self.device)
        self.actor = Actor(
            repr_dim, action_dim, feature_dim, hidden_dim, hidden_layers, log_std_bounds
        ).to(self.device)
        self.critic = Critic(repr_dim, action_dim, feature_dim, hidden_dim, hidden_layers).to(
            self.device
        )
        for net in (self.encoder, self.actor, self.critic):
            net.apply(orthogonal_init)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.encoder_target = None
        if target_encoder:
            self.encoder_target = copy.deepcopy(self.encoder).requires_grad_(False)
        self.log_alpha = torch.tensor(math.log(init_temperature), device=self.device)
        self.log_alpha.requires_grad_(True)
        critic_params = [*self.encoder.parameters(), *self.critic.parameters()]
        self.curl = None
        if curl:
            # The key network: a momentum copy of the encoder and the critic's projection.
            self.curl = BilinearInfoNCE(feature_dim).to(self.device)
            self.key_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
            self.key_trunk = copy.deepcopy(self.critic.trunk).requires_grad_(False)
            critic_params += list(self.curl.parameters())
        # Fused Adam: one kernel for all parameters; on a CPU 5x faster than foreach at
        # 1024-wide heads (benchmarks/sac_speed.py), on CUDA the fastest too.
        adam = {"fused": True} if self.device.type in ("cpu", "cuda") else {}
        self.critic_opt = torch.optim.Adam(critic_params, lr=critic_lr, betas=critic_betas, **adam)
        self.actor_opt = torch.optim.Adam(
            self.actor.parameters(), lr=actor_lr, betas=actor_betas, **adam
        )
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=alpha_lr, betas=alpha_betas)
        self.updates = 0

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp()

    # ------------------------------------------------------------------ acting
    @torch.no_grad()
    def act(
        self,
        obs: dict[str, torch.Tensor],
        deterministic: bool,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Actions (N, A) in [-1, 1] for a batch of observations (each field (N, ...))."""
        h = self.encoder({k: v.to(self.device) for k, v in obs.items()})
        if deterministic:
            return torch.tanh(self.actor(h)[0])
        return self.actor.sample(h, generator)[0]

    # ------------------------------------------------------------------ updates
    def update(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One gradient update of the critic (and encoder), and every actor_update_every of
        the actor and temperature; targets move every target_update_every."""
        obs, next_obs = batch.obs, batch.next_obs
        batch_size = len(batch.action)
        if self.augment_pad:  # uint8 shifts; M copies of obs, K of next_obs (DrQ)
            obs = shift_fields(obs, self.augment_pad, self.generator, self.q_augs)
            next_obs = shift_fields(next_obs, self.augment_pad, self.generator, self.target_augs)
        with autocast(self.precision, self.device):
            h = self.encoder(obs)  # (M*B, R), one forward for both Q functions and all M
            with torch.no_grad():
                h_next = self.encoder(next_obs)  # (K*B, R): the actor's next actions
                h_target = h_next if self.encoder_target is None else self.encoder_target(next_obs)
        metrics = self.update_critic(h, batch, h_next, h_target)
        if self.updates % self.actor_update_every == 0:
            metrics.update(self.update_actor(h[:batch_size].detach()))
        if self.updates % self.target_update_every == 0:
            soft_update(self.critic_target, self.critic, self.critic_tau)
            if self.encoder_target is not None:
                soft_update(self.encoder_target, self.encoder, self.critic_tau)
            if self.curl is not None:
                soft_update(self.key_encoder, self.encoder, self.encoder_tau)
                soft_update(self.key_trunk, self.critic.trunk, self.encoder_tau)
        self.updates += 1
        return metrics

    def update_critic(
        self,
        h: torch.Tensor,
        batch: Batch,
        h_next: torch.Tensor,
        h_target: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """h: (M*B, R) features of M shifts of the observations; h_next: (K*B, R) the online
        encoder's of K shifts of the next ones (the next actions come from them); h_target:
        the target encoder's of the same (default h_next)."""
        batch_size, device = len(batch.action), self.device
        h_target = h_next if h_target is None else h_target
        with torch.no_grad():
            with autocast(self.precision, device):
                next_action, next_log_prob = self.actor.sample(h_next, self.generator)
                target_q1, target_q2 = self.critic_target(h_target, next_action)
            target_v = torch.min(target_q1, target_q2) - self.alpha * next_log_prob  # (K*B, 1)
            if self.target_augs > 1:  # DrQ Eq. 3: the target averaged over K shifts
                target_v = target_v.view(self.target_augs, batch_size, 1).mean(0)
            target_q = batch.reward + batch.discount * self.discount * target_v  # (B, 1) fp32
        action = batch.action
        if self.q_augs > 1:  # DrQ Eq. 4: the Q loss averaged over M shifts
            action, target_q = action.repeat(self.q_augs, 1), target_q.repeat(self.q_augs, 1)
        with autocast(self.precision, device):
            q1, q2 = self.critic(h, action)  # (M*B, 1) fp32
        critic_loss = F.mse_loss(q1, target_q) + F.mse_loss(q2, target_q)
        loss = critic_loss
        metrics = {"critic_loss": critic_loss.detach(), "q_mean": q1.detach().mean()}
        if self.curl is not None:
            # Anchor: the batch's translation already encoded (h); positive: another one.
            positive = shift_fields(batch.obs, self.augment_pad, self.generator)
            with autocast(self.precision, device):
                with torch.no_grad():
                    key = self.key_trunk(self.key_encoder(positive))
                query = self.critic.trunk(h[:batch_size])
            curl_loss = self.curl(query.float(), key.float())
            loss = loss + self.curl_coef * curl_loss
            metrics["curl_loss"] = curl_loss.detach()
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()
        return metrics

    def update_actor(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        """h: detached encoder features (B, R); the critic is only read."""
        self.critic.requires_grad_(False)
        with autocast(self.precision, self.device):
            action, log_prob = self.actor.sample(h, self.generator)  # fp32
            q1, q2 = self.critic(h, action)  # fp32
        self.critic.requires_grad_(True)
        actor_loss = (self.alpha.detach() * log_prob - torch.min(q1, q2)).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        alpha_loss = (self.alpha * (-log_prob.detach() - self.target_entropy)).mean()
        self.alpha_opt.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_opt.step()
        return {
            "actor_loss": actor_loss.detach(),
            "alpha_loss": alpha_loss.detach(),
            "alpha": self.alpha.detach(),
            "entropy": -log_prob.detach().mean(),
        }

    def precision_trial(
        self, fields: dict[str, tuple[tuple[int, ...], torch.dtype]], batch_size: int
    ) -> Callable[[], torch.Tensor]:
        """The critic step's forward for ``saliency_rl.precision.choose_precision``: copies of
        the encoder(s) and critic on a zero batch of the replay's ``fields``, M shifts of
        ``batch_size`` observations with gradients and K without (as ``update``). Touches
        neither the agent's networks nor any random stream."""
        encoder, critic = copy.deepcopy(self.encoder), copy.deepcopy(self.critic)
        target = None if self.encoder_target is None else copy.deepcopy(self.encoder_target)
        params = [*encoder.parameters(), *critic.parameters()]

        def zeros(n: int) -> dict[str, torch.Tensor]:
            return {
                name: torch.zeros((n, *shape), dtype=dtype, device=self.device)
                for name, (shape, dtype) in fields.items()
            }

        obs, next_obs = zeros(self.q_augs * batch_size), zeros(self.target_augs * batch_size)
        action_dim = self.actor.policy[-1].out_features // 2
        action = torch.zeros(self.q_augs * batch_size, action_dim, device=self.device)

        def trial() -> torch.Tensor:
            for p in params:
                p.grad = None
            h = encoder(obs)
            with torch.no_grad():
                encoder(next_obs)
                if target is not None:
                    target(next_obs)
            q1, q2 = critic(h, action)
            return q1.mean() + q2.mean()

        return trial

    # ------------------------------------------------------------------ state
    def modules(self) -> dict[str, nn.Module]:
        """The networks whose weights make the model (saved as model.safetensors)."""
        nets = {
            "encoder": self.encoder,
            "actor": self.actor,
            "critic": self.critic,
            "critic_target": self.critic_target,
        }
        if self.encoder_target is not None:
            nets["encoder_target"] = self.encoder_target
        if self.curl is not None:
            nets.update(curl=self.curl, key_encoder=self.key_encoder, key_trunk=self.key_trunk)
        return nets

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Flat ``<module>.<name>`` -> tensor, and ``log_alpha``."""
        flat = {"log_alpha": self.log_alpha.detach()}
        for prefix, net in self.modules().items():
            flat.update({f"{prefix}.{k}": v for k, v in net.state_dict().items()})
        return flat

    def load_state_dict(self, flat: dict[str, torch.Tensor], strict: bool = True) -> None:
        with torch.no_grad():
            self.log_alpha.copy_(flat["log_alpha"])
        for prefix, net in self.modules().items():
            part = {k[len(prefix) + 1 :]: v for k, v in flat.items() if k.startswith(prefix + ".")}
            if part or strict:
                net.load_state_dict(part, strict=strict)

    def optimizer_state(self) -> dict[str, Any]:
        return {
            "critic": self.critic_opt.state_dict(),
            "actor": self.actor_opt.state_dict(),
            "alpha": self.alpha_opt.state_dict(),
            "updates": self.updates,
            "generator": self.generator.get_state(),
        }

    def load_optimizer_state(self, state: dict[str, Any]) -> None:
        self.critic_opt.load_state_dict(state["critic"])
        self.actor_opt.load_state_dict(state["actor"])
        self.alpha_opt.load_state_dict(state["alpha"])
        self.updates = int(state["updates"])
        self.generator.set_state(state["generator"].cpu())


@torch.no_grad()
def soft_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """target <- (1 - tau) target + tau online, for all parameters at once."""
    target_params = list(target.parameters())
    if target_params:  # a VectorObsEncoder has none
        torch._foreach_lerp_(target_params, list(online.parameters()), tau)
