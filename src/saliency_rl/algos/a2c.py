"""A2C (Mnih et al. 2016, synchronous) with self-supervised attention masks (Wu et al. 2021).

The actor-critic is the Atari CNN (models.atari_cnn); with attention, its last feature maps
(N, 32, 7, 7) are multiplied by the 7x7 mask Ψ(newest frame) of the attention module
(models.attention) before the linear layer. Modes (``ATTENTION_MODES``):

- ``none``: the plain CNN (the baseline);
- ``joint``: the module is trained online beside the agent, L = L_RL + L_attention, on frame
  pairs from the recent frames of each environment; the RL loss reaches the mask too;
- ``top-down``: the same mask, trained only by the RL loss (no reconstruction);
- ``frozen``, ``universal``, ``transfer``: a module pretrained offline
  (``saliency-rl pretrain-attention``) and kept fixed. The three differ only in the frames
  it was pretrained on: this game; several games including this one; other games.

ACKTR (Wu, Mansimov, Liao, Grosse, Ba 2017; ``A2CConfig.algo == "acktr"``, preset ``acktr``)
is :class:`ACKTRAgent`: the same network, losses and attention modes, the actor-critic
stepped by K-FAC (algos.kfac) instead of RMSprop, the attention module by its own RMSprop.

The agent does no logging: :meth:`A2CAgent.update` returns a dict of metrics and the trainer
(algos.a2c_trainer) logs them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from saliency_rl.models.atari_cnn import AtariCNN, orthogonal_init
from saliency_rl.models.attention import SelfSupervisedAttention
from saliency_rl.precision import PRECISIONS, autocast, on_a_copy
from saliency_rl.runs import RunError, check_settings

ALGOS = ("a2c", "acktr")
ATTENTION_MODES = ("none", "joint", "top-down", "frozen", "universal", "transfer")
ATTENTION_UPDATES = ("joint", "separate")
PRETRAINED_MODES = ("frozen", "universal", "transfer")  # a fixed module from a checkpoint


# ---------------------------------------------------------------------- configuration
@dataclass
class A2CConfig:
    """Hyperparameters of an A2C or ACKTR run; the defaults are preset ``wu2021`` (A2C)."""

    algo: str = "a2c"
    """``a2c`` (RMSprop) or ``acktr`` (K-FAC natural gradient, algos.kfac); see ALGOS."""
    total_steps: int = 10_000_000
    """Agent steps summed over all environments (each 4 emulator frames), rounded up to
    whole updates. The official config's ``num_env_steps`` (10M, i.e. 40M frames)."""
    num_envs: int = 16
    """Environments stepped together (A2C's parallel actors)."""
    num_steps: int = 5
    """Steps per environment between updates: the n of the n-step returns."""
    learning_rate: float = 7e-4
    """a2c: the RMSprop learning rate; acktr: the K-FAC learning rate (0.25). Constant."""
    rmsprop_alpha: float = 0.99
    """RMSprop smoothing constant of the squared-gradient average."""
    rmsprop_eps: float = 1e-5
    """RMSprop epsilon added to the denominator."""
    gamma: float = 0.99
    """Discount factor."""
    entropy_coef: float = 0.01
    """Weight of the policy-entropy bonus."""
    value_coef: float = 0.5
    """Weight of the value loss (mean squared n-step advantage)."""
    max_grad_norm: float = 0.5
    """a2c: gradients are clipped to this global L2 norm (all parameters together);
    acktr: only the attention module's (K-FAC's step is bounded by kfac_kl_clip instead)."""
    kfac_momentum: float = 0.9
    """acktr: SGD momentum of the K-FAC step (baselines, ikostrikov: 0.9)."""
    kfac_stat_decay: float = 0.99
    """acktr: running-average decay of the Kronecker factors."""
    kfac_damping: float = 0.01
    """acktr: Tikhonov damping added to the factors' eigenvalue products (baselines' epsilon)."""
    kfac_kl_clip: float = 0.001
    """acktr: trust region, the largest KL an update may cause as predicted by the Fisher."""
    kfac_eigen_every: int = 10
    """acktr: eigen-decompose the factors every this many updates (ikostrikov's Tf)."""
    kfac_stats_every: int = 1
    """acktr: update the factors (a Fisher backward pass) every this many updates (Ts)."""
    vf_fisher_coef: float = 1.0
    """acktr: weight of the value part of the sampled-Fisher loss."""
    attention_lr: float = 7e-4
    """acktr: RMSprop learning rate of the attention module (joint, top-down), which K-FAC
    does not precondition; A2C's rate, so the module learns as it does under A2C."""
    hidden_size: int = 512
    """Width of the CNN's linear layer."""
    precision: str = "fp32"
    """fp32 (the official code's); bf16: the networks' convolutions and linear layers under
    bf16 autocast, losses in fp32; auto: the faster of the two, timed at start on the run's
    own networks (saliency_rl.precision; emulated bf16, on CPUs without AVX512-BF16 or AMX,
    was 10x slower). acktr: fp32 only (K-FAC's factors and eigendecompositions)."""
    attention: str = "none"
    """Attention mode, one of ATTENTION_MODES (see the module docstring)."""
    attention_coef: float = 1.0
    """Weight of L_attention in the joint loss L_RL + coef * L_attention (mode ``joint``)."""
    attention_update: str = "joint"
    """How L_attention steps the module in mode ``joint``. ``joint``: one RMSprop step on
    L_RL + attention_coef * L_attention, one clip over both (this project's first reading);
    ``separate`` (preset wu2021): the official code's, after each A2C step L_attention alone
    takes an Adam step (attention_adam_lr) with its own clip at max_grad_norm, from update
    attention_warmup + 1 on (benchmarks/results/attention_audit.md, row 3)."""
    attention_adam_lr: float = 1e-3
    """``separate``: Adam learning rate of the attention step (official: 1e-3)."""
    attention_warmup: int = 16
    """``separate``: A2C updates before the first attention step (official: j > 15)."""
    attention_threshold: float = 0.01
    """delta: squared pixel errors (pixels in [0, 1]) at or below it are ignored."""
    attention_sparsity: float = 1e-3
    """lambda: weight of the mean mask in L_attention."""
    attention_buffer: int = 60
    """Recent frames kept per environment for the pairs of ``joint``: a pair is two distinct
    frames of one game among them, 1 to attention_buffer - 1 steps apart (official: 60)."""
    seed: int = 0
    """Seeds the network, the action sampling, the pairs and the environments."""
    vector: str = "native"
    """Vector-env backend: ``native`` (ale-py C++, fastest), ``our`` (exact resume),
    ``our-async``; see envs.atari_vector."""
    vector_groups: int = 1
    """The native backend's envs in this many groups: while one group's emulators run, the
    network picks the next group's actions (the same transitions as stepping all at once;
    the action sampling draws group by group). Other backends: 1 group. On a busy 2-core
    machine 2 groups were no faster (benchmarks/results/a2c_speed.md); try it on more cores."""
    eval_every: int = 100_000
    """Evaluate every this many agent steps (0: only at the end)."""
    eval_episodes: int = 10
    """Full games per evaluation (preset ``atari-eval``: all lives, unclipped score)."""
    eval_deterministic: bool = False
    """Evaluate with the most likely action; False samples from the policy, as A2C acts."""
    eval_max_steps: int = 27_000
    """Agent steps after which an evaluation game is cut (ALE's own limit is 27,000)."""
    checkpoint_every: int = 100_000
    """Save the checkpoint for resume every this many agent steps (and at the end)."""
    log_every: int = 10_000
    """Append a row to metrics.csv every this many agent steps."""

    def validate(self) -> A2CConfig:
        """Raise RunError naming the first field out of range; return self."""
        from saliency_rl.envs.atari_vector import VECTOR_BACKENDS

        check_settings(
            self,
            choices={
                "algo": ALGOS, "attention": ATTENTION_MODES, "vector": VECTOR_BACKENDS,
                "attention_update": ATTENTION_UPDATES, "precision": PRECISIONS,
            },
            positive=(
                "kfac_eigen_every", "kfac_stats_every", "attention_lr", "kfac_kl_clip",
                "total_steps", "num_envs", "num_steps", "hidden_size", "eval_max_steps",
                "vector_groups", "checkpoint_every", "log_every", "learning_rate", "rmsprop_eps",
                "attention_adam_lr",
            ),
            non_negative=(
                "kfac_damping", "vf_fisher_coef", "eval_every", "eval_episodes", "entropy_coef",
                "value_coef", "seed", "max_grad_norm", "attention_coef", "attention_threshold",
                "attention_sparsity", "attention_warmup",
            ),
            fractions=("kfac_momentum", "kfac_stat_decay"),
        )  # fmt: skip
        for name in ("gamma", "rmsprop_alpha"):
            if not 0 <= getattr(self, name) <= 1:
                raise RunError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        if self.attention_buffer < 2:
            raise RunError(f"attention_buffer must be >= 2, got {self.attention_buffer!r}")
        if self.algo == "acktr" and self.precision != "fp32":
            raise RunError("acktr trains in fp32 (K-FAC's factors and eigendecompositions); "
                           f"precision {self.precision} is for a2c")  # fmt: skip
        return self

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.num_steps

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> A2CConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(obj) - names
        if unknown:
            raise RunError(f"unknown A2C settings {sorted(unknown)}; valid: {sorted(names)}")
        return cls(**obj)


A2C_PRESETS: dict[str, A2CConfig] = {
    # Wu, Khetarpal, Precup (AAAI 2021), A2C on Atari, and their official config
    # (experiments/atari/a2c_mspacman*.yaml): 16 envs x 5 steps, RMSprop 7e-4 (eps 1e-5,
    # alpha 0.99), gamma 0.99, entropy 0.01, value 0.5, clip 0.5; delta 0.01, lambda 1e-3.
    "wu2021": A2CConfig(attention_update="separate"),
    # ACKTR (Wu, Mansimov, Liao, Grosse, Ba, NeurIPS 2017) as OpenAI baselines runs it on
    # Atari (baselines/acktr/run_atari.py and acktr_disc.py): 32 envs x 20 steps (batch
    # 640), K-FAC lr 0.25, momentum 0.9, KL clip 0.001, damping (epsilon) 0.01, factor
    # decay 0.99, entropy 0.01, value 0.5, value-Fisher weight 1.0; ikostrikov's port
    # eigen-decomposes every 10 updates. Baselines decays the lr linearly; kept constant
    # here, as A2C's.
    "acktr": A2CConfig(
        algo="acktr",
        num_envs=32,
        num_steps=20,
        learning_rate=0.25,
        kfac_momentum=0.9,
        kfac_kl_clip=0.001,
        kfac_damping=0.01,
        kfac_stat_decay=0.99,
        kfac_eigen_every=10,
        kfac_stats_every=1,
        vf_fisher_coef=1.0,
    ),
}
PRESET_OF_ALGO = {"a2c": "wu2021", "acktr": "acktr"}


def a2c_config(preset: str = "wu2021", **overrides: Any) -> A2CConfig:
    """A validated config: preset ``preset`` with ``overrides`` (None values are ignored)."""
    if preset not in A2C_PRESETS:
        raise RunError(f"unknown A2C preset {preset!r}; valid presets: {', '.join(A2C_PRESETS)}")
    values = {k: v for k, v in overrides.items() if v is not None}
    names = {f.name for f in dataclasses.fields(A2CConfig)}
    unknown = set(values) - names
    if unknown:
        raise RunError(f"unknown A2C settings {sorted(unknown)}; valid: {sorted(names)}")
    return dataclasses.replace(A2C_PRESETS[preset], **values).validate()


# ---------------------------------------------------------------------- network
class ActorCritic(nn.Module):
    """Atari CNN (+ attention mask) -> action logits and state value.

    Args:
        num_actions: size of the discrete action set.
        in_channels: stacked grey frames (4).
        hidden_size: width of the CNN's linear layer (512).
        attention: one of ATTENTION_MODES; all but ``none`` build an attention module whose
            mask Ψ(newest frame) multiplies the CNN's last feature maps.
    """

    def __init__(
        self, num_actions: int, *, in_channels: int = 4, hidden_size: int = 512, attention: str
    ) -> None:
        super().__init__()
        if attention not in ATTENTION_MODES:
            raise RunError(
                f"unknown attention mode {attention!r}; valid modes: {', '.join(ATTENTION_MODES)}"
            )
        self.attention_mode = attention
        self.cnn = AtariCNN(in_channels, hidden_size)
        self.attention = SelfSupervisedAttention(1) if attention != "none" else None
        self.policy = orthogonal_init(nn.Linear(hidden_size, num_actions), 0.01)
        self.value = orthogonal_init(nn.Linear(hidden_size, 1), 1.0)
        self.frozen = attention in PRETRAINED_MODES
        if self.frozen:
            self.attention.requires_grad_(False)
        self.precision = "fp32"  # set by the trainer to the run's chosen precision

    def mask(self, obs: Tensor) -> Tensor | None:
        """Ψ of the newest frame, (N, 1, 7, 7), or None without attention."""
        if self.attention is None:
            return None
        newest = obs[:, -1:]  # (N, 1, 84, 84)
        if self.frozen:
            with torch.no_grad():
                return self.attention.mask(newest)
        return self.attention.mask(newest)

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """obs uint8 (N, 4, 84, 84) -> logits (N, A), value (N,), mask (N, 1, 7, 7) | None,
        fp32 also under bf16 (they make the losses)."""
        with autocast(self.precision, obs.device):
            mask = self.mask(obs)
            hidden = self.cnn(obs, mask)  # (N, 512)
            logits, value = self.policy(hidden), self.value(hidden).squeeze(-1)
        return logits.float(), value.float(), None if mask is None else mask.float()

    def attention_loss(
        self, pairs: tuple[Tensor, Tensor], threshold: float, sparsity: float
    ) -> tuple[Tensor, dict[str, float]]:
        """L_attention of the module on frame pairs, in the run's precision."""
        with autocast(self.precision, pairs[0].device):
            return self.attention.loss(*pairs, threshold=threshold, sparsity=sparsity)

    def train(self, mode: bool = True) -> ActorCritic:
        super().train(mode)
        if self.frozen:
            self.attention.eval()
        return self


# ---------------------------------------------------------------------- agent
@dataclass
class Rollout:
    """num_steps steps of N environments, on the agent's device."""

    obs: Tensor
    """uint8 (T+1, N, 4, 84, 84): the observations, the last one to bootstrap from."""
    actions: Tensor
    """int64 (T, N)."""
    rewards: Tensor
    """float32 (T, N): training rewards (clipped)."""
    dones: Tensor
    """float32 (T, N): 1 where the episode ended at step t (obs[t+1] starts a new one)."""
    logits: Tensor | None = None
    """(T, N, A) from :meth:`A2CAgent.explore`, with their autograd graph; None: recomputed."""
    values: Tensor | None = None
    """(T, N) from :meth:`A2CAgent.explore`, with their autograd graph; None: recomputed."""


class A2CAgent:
    """The actor-critic, its RMSprop optimizer and the A2C update.

    Args:
        num_actions: size of the discrete action set.
        attention: one of ATTENTION_MODES.
        pretrained_attention: for frozen / universal / transfer, the pretrained module whose
            weights are copied in (required there, refused elsewhere).
        device: where the network lives.
        hidden_size, learning_rate, rmsprop_alpha, rmsprop_eps, gamma, entropy_coef,
        value_coef, max_grad_norm, attention_coef, attention_threshold, attention_sparsity:
            as in :class:`A2CConfig`.
    """

    def __init__(
        self,
        num_actions: int,
        *,
        attention: str = "none",
        pretrained_attention: SelfSupervisedAttention | None = None,
        device: str | torch.device = "cpu",
        hidden_size: int = 512,
        learning_rate: float = 7e-4,
        rmsprop_alpha: float = 0.99,
        rmsprop_eps: float = 1e-5,
        gamma: float = 0.99,
        entropy_coef: float = 0.01,
        value_coef: float = 0.5,
        max_grad_norm: float = 0.5,
        attention_coef: float = 1.0,
        attention_threshold: float = 0.01,
        attention_sparsity: float = 1e-3,
        attention_update: str = "joint",
        attention_adam_lr: float = 1e-3,
        attention_warmup: int = 16,
    ) -> None:
        self.device = torch.device(device)
        self.net = ActorCritic(num_actions, hidden_size=hidden_size, attention=attention)
        if attention in PRETRAINED_MODES:
            if pretrained_attention is None:
                raise RunError(
                    f"attention mode {attention!r} needs a pretrained module: give "
                    "--attention-checkpoint CKPT (made by `saliency-rl pretrain-attention`)"
                )
            self.net.attention.load_state_dict(pretrained_attention.state_dict())
        elif pretrained_attention is not None:
            raise RunError(
                f"attention mode {attention!r} trains its own module; a pretrained one is used "
                f"only by {', '.join(PRETRAINED_MODES)}"
            )
        # channels_last: about 25% faster convolutions (forward and backward) on CPUs
        self.net.to(self.device, memory_format=torch.channels_last)
        self.attention_mode = attention
        self.gamma, self.entropy_coef, self.value_coef = gamma, entropy_coef, value_coef
        self.max_grad_norm = max_grad_norm
        self.attention_coef = attention_coef
        self.attention_threshold, self.attention_sparsity = attention_threshold, attention_sparsity
        self.params = [p for p in self.net.parameters() if p.requires_grad]
        self.optimizer = torch.optim.RMSprop(
            self.params, lr=learning_rate, alpha=rmsprop_alpha, eps=rmsprop_eps
        )
        self.separate = attention_update == "separate" and attention == "joint"
        self.attention_warmup, self.updates = attention_warmup, 0
        self.attention_optimizer = None
        if self.separate:
            module = self.net.attention.parameters()
            self.attention_optimizer = torch.optim.Adam(module, lr=attention_adam_lr)

    @property
    def trains_attention(self) -> bool:
        """Whether update() wants frame pairs (mode ``joint``)."""
        return self.attention_mode == "joint"

    @torch.no_grad()
    def act(
        self,
        obs: Tensor,
        *,
        deterministic: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """obs uint8 (N, 4, 84, 84) on the device -> actions int64 (N,)."""
        logits, _, _ = self.net(obs)
        if deterministic:
            return logits.argmax(-1)
        probs = torch.softmax(logits, -1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)

    def explore(
        self, obs: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """Sample actions for a rollout, keeping the graph: actions (N,), logits, values, mask.

        The parameters do not change during a rollout, so the logits and values of the
        acting passes are those the update would recompute: passing them in the Rollout
        saves the update a forward pass over all T*N observations.
        """
        logits, values, mask = self.net(obs)
        probs = torch.softmax(logits.detach(), -1)
        actions = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        return actions, logits, values, mask

    @torch.no_grad()
    def n_step_returns(self, rollout: Rollout) -> Tensor:
        """(T, N): R_t = r_t + gamma (1 - done_t) R_{t+1}, bootstrapped from V(obs[T])."""
        _, running, _ = self.net(rollout.obs[-1])
        returns = torch.empty_like(rollout.rewards)
        for t in reversed(range(rollout.rewards.shape[0])):
            running = rollout.rewards[t] + self.gamma * (1.0 - rollout.dones[t]) * running
            returns[t] = running
        return returns

    def losses(
        self, rollout: Rollout, pairs: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, dict[str, Tensor], dict[str, float]]:
        """The A2C loss (+ coef * L_attention on ``pairs`` in mode joint) of ``rollout``.

        Returns (loss, parts: policy_loss, value_loss, entropy, logits (T*N, A), values
        (T*N,), each with its graph; attention metrics).
        """
        returns = self.n_step_returns(rollout).flatten()  # (T*N,)
        if rollout.logits is None or rollout.values is None:
            self.before_recompute()
            logits, values, _ = self.net(rollout.obs[:-1].flatten(0, 1))  # (T*N, A), (T*N,)
        else:
            logits, values = rollout.logits.flatten(0, 1), rollout.values.flatten()
        log_probs = F.log_softmax(logits, -1)
        taken = log_probs.gather(1, rollout.actions.flatten()[:, None]).squeeze(1)
        entropy = -(log_probs.exp() * log_probs).sum(-1).mean()
        advantages = returns - values
        value_loss = advantages.square().mean()
        policy_loss = -(advantages.detach() * taken).mean()
        loss = policy_loss + self.value_coef * value_loss - self.entropy_coef * entropy
        metrics: dict[str, float] = {}
        if self.trains_attention and pairs is not None and not self.separate:
            attention_loss, metrics = self.net.attention_loss(
                pairs, self.attention_threshold, self.attention_sparsity
            )
            loss = loss + self.attention_coef * attention_loss
        parts = {
            "policy_loss": policy_loss,
            "value_loss": value_loss,
            "entropy": entropy,
            "logits": logits,
            "values": values,
        }
        return loss, parts, metrics

    def before_recompute(self) -> None:
        """Called before the update recomputes the rollout's forward pass (ACKTR: forget
        the activations recorded while acting, the recomputed ones replace them)."""

    def update(
        self, rollout: Rollout, pairs: tuple[Tensor, Tensor] | None = None
    ) -> dict[str, float]:
        """One A2C step on ``rollout`` (+ L_attention on ``pairs`` in mode joint); metrics.

        Args:
            rollout: the last num_steps steps.
            pairs: (source, target) uint8 (M, 1, 84, 84) frames of one trajectory each, for
                mode joint; None skips the attention loss (no pairs yet).
        """
        loss, parts, metrics = self.losses(rollout, pairs)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
        self.optimizer.step()
        self.updates += 1
        if self.separate and pairs is not None and self.updates > self.attention_warmup:
            metrics = self._attention_step(pairs)
        metrics.update(
            {k: float(parts[k].detach()) for k in ("policy_loss", "value_loss", "entropy")},
            grad_norm=float(grad_norm),
        )
        return metrics

    def _attention_step(self, pairs: tuple[Tensor, Tensor]) -> dict[str, float]:
        """``separate``: L_attention alone, its own Adam step and clip (the official code's)."""
        module = self.net.attention
        loss, metrics = self.net.attention_loss(
            pairs, self.attention_threshold, self.attention_sparsity
        )
        self.attention_optimizer.zero_grad(set_to_none=True)
        self.optimizer.zero_grad(set_to_none=True)  # the RL step's gradients are spent
        loss.backward()
        nn.utils.clip_grad_norm_(module.parameters(), self.max_grad_norm)
        self.attention_optimizer.step()
        return metrics

    def precision_trial(self, batch: int) -> Callable[[], Tensor]:
        """``--precision auto``'s trial: the loss of one update's forward (``batch``
        observations, and 16 frame pairs where the module trains) on a copy of the network,
        so timing it touches neither the run's weights nor its random streams."""
        generator = torch.Generator().manual_seed(0)

        def frames(*shape: int) -> Tensor:
            x = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
            return x.to(self.device)

        obs = frames(batch, 4, 84, 84).contiguous(memory_format=torch.channels_last)
        pairs = (frames(16, 1, 84, 84), frames(16, 1, 84, 84)) if self.trains_attention else None

        def loss_of(net: ActorCritic) -> Tensor:
            # the timing runs this under bf16 autocast or none; the network's own must agree
            net.precision = "bf16" if torch.is_autocast_enabled(self.device.type) else "fp32"
            logits, values, _ = net(obs)
            loss = logits.logsumexp(-1).mean() + values.square().mean()
            if pairs is not None:
                loss = loss + net.attention_loss(pairs, self.attention_threshold, 0.0)[0]
            return loss

        return on_a_copy(self.net, loss_of)

    # resume: what the trainer saves of the optimisation state
    def optimizer_state(self) -> dict[str, Any]:
        if not self.separate:  # the layout of runs made before ``separate``
            return self.optimizer.state_dict()
        return {
            "rl": self.optimizer.state_dict(),
            "attention": self.attention_optimizer.state_dict(),
            "updates": self.updates,
        }

    def load_optimizer_state(self, state: dict[str, Any]) -> None:
        if not self.separate:
            self.optimizer.load_state_dict(state)
            return
        self.optimizer.load_state_dict(state["rl"])
        self.attention_optimizer.load_state_dict(state["attention"])
        self.updates = int(state["updates"])


class ACKTRAgent(A2CAgent):
    """ACKTR (Wu et al. 2017): the A2C loss, stepped by K-FAC (algos.kfac).

    K-FAC preconditions every Linear and Conv2d layer of the actor-critic: the CNN, the
    policy and the value heads. The attention module (modes joint and top-down) is not
    preconditioned: its decoder has transposed convolutions K-FAC does not model, and its
    reconstruction loss is no log-likelihood of the policy, so the policy's Fisher says
    nothing about it. It is stepped by its own RMSprop (A2C's settings, lr
    ``attention_lr``), on the gradient of the same joint loss (L_RL + coef * L_attention in
    joint, L_RL in top-down), clipped to ``max_grad_norm``; frozen modules stay fixed.

    Factor statistics come from a sampled-Fisher loss every ``stats_every`` updates, as
    baselines and ikostrikov: -mean log pi(a~|s) with a~ sampled from the policy, plus
    vf_fisher_coef x -mean (V - stop_grad(V + N(0, 1)))²; its gradients go only into the
    factors. The samples use the agent's own generator (``fisher_generator``), saved for
    resume.

    Args:
        learning_rate: the K-FAC learning rate (0.25).
        kfac_momentum, kfac_stat_decay, kfac_damping, kfac_kl_clip, kfac_eigen_every,
        kfac_stats_every, vf_fisher_coef, attention_lr, seed: as in :class:`A2CConfig`.
        Others: as :class:`A2CAgent` (rmsprop_alpha, rmsprop_eps: the attention RMSprop's).
    """

    def __init__(
        self,
        num_actions: int,
        *,
        learning_rate: float = 0.25,
        kfac_momentum: float = 0.9,
        kfac_stat_decay: float = 0.99,
        kfac_damping: float = 0.01,
        kfac_kl_clip: float = 0.001,
        kfac_eigen_every: int = 10,
        kfac_stats_every: int = 1,
        vf_fisher_coef: float = 1.0,
        attention_lr: float = 7e-4,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        from saliency_rl.algos.kfac import KFAC, kfac_layers

        super().__init__(num_actions, learning_rate=attention_lr, **kwargs)
        layers = kfac_layers(self.net.cnn) + kfac_layers(self.net.policy)
        layers += kfac_layers(self.net.value)
        self.kfac = KFAC(
            layers,
            lr=learning_rate,
            momentum=kfac_momentum,
            stat_decay=kfac_stat_decay,
            damping=kfac_damping,
            kl_clip=kfac_kl_clip,
            eigen_every=kfac_eigen_every,
        )
        kfac_params = {id(p) for p in self.kfac.params}
        self.attention_params = [p for p in self.params if id(p) not in kfac_params]
        # A2CAgent's RMSprop, now over the attention module only (None without one to train)
        self.optimizer = (
            torch.optim.RMSprop(
                self.attention_params,
                lr=attention_lr,
                alpha=kwargs.get("rmsprop_alpha", 0.99),
                eps=kwargs.get("rmsprop_eps", 1e-5),
            )
            if self.attention_params
            else None
        )
        self.stats_every, self.vf_fisher_coef = kfac_stats_every, vf_fisher_coef
        self.updates = 0
        self.fisher_generator = torch.Generator(self.device).manual_seed(seed + 104_729)

    def before_recompute(self) -> None:
        self.kfac.clear()

    def fisher_loss(self, logits: Tensor, values: Tensor) -> Tensor:
        """The sampled-Fisher loss of the module docstring, on the update's batch."""
        probs = torch.softmax(logits.detach(), -1)
        sampled = torch.multinomial(probs, 1, generator=self.fisher_generator)
        log_probs = F.log_softmax(logits, -1).gather(1, sampled).squeeze(1)
        noise = torch.randn(values.shape, generator=self.fisher_generator, device=values.device)
        sampled_values = (values + noise).detach()
        value_fisher = -(values - sampled_values).square().mean()
        return -log_probs.mean() + self.vf_fisher_coef * value_fisher

    def update(
        self, rollout: Rollout, pairs: tuple[Tensor, Tensor] | None = None
    ) -> dict[str, float]:
        """One ACKTR step on ``rollout`` (+ L_attention on ``pairs`` in mode joint); metrics."""
        loss, parts, metrics = self.losses(rollout, pairs)
        if self.updates % self.stats_every == 0:
            self.kfac.zero_grad()
            with self.kfac.recording_gradients():
                self.fisher_loss(parts["logits"], parts["values"]).backward(retain_graph=True)
            self.kfac.update_stats()
        self.kfac.clear()
        self.kfac.zero_grad()
        for p in self.attention_params:
            p.grad = None
        loss.backward()
        grad_norm = float("nan")
        if self.optimizer is not None:
            grad_norm = float(nn.utils.clip_grad_norm_(self.attention_params, self.max_grad_norm))
            self.optimizer.step()
        kfac_metrics = self.kfac.step()
        self.updates += 1
        metrics.update(
            {k: float(parts[k].detach()) for k in ("policy_loss", "value_loss", "entropy")},
            attention_grad_norm=grad_norm,
            **kfac_metrics,
        )
        return metrics

    def optimizer_state(self) -> dict[str, Any]:
        return {
            "kfac": self.kfac.state_dict(),
            "attention": self.optimizer.state_dict() if self.optimizer is not None else None,
            "fisher_generator": self.fisher_generator.get_state(),
            "updates": self.updates,
        }

    def load_optimizer_state(self, state: dict[str, Any]) -> None:
        self.kfac.load_state_dict(state["kfac"])
        if self.optimizer is not None:
            self.optimizer.load_state_dict(state["attention"])
        self.fisher_generator.set_state(state["fisher_generator"].cpu())
        self.updates = int(state["updates"])


def build_agent(
    config: A2CConfig, num_actions: int, pretrained_attention: Any, device: torch.device
) -> A2CAgent:
    """The A2C or ACKTR agent of a config (networks initialised from torch's global RNG);
    ``pretrained_attention``: the fixed module of frozen / universal / transfer, or None."""
    c = config
    extra: dict[str, Any] = {}
    if c.algo == "a2c":  # ACKTR steps the module with its own RMSprop (attention_lr)
        extra.update(
            attention_update=c.attention_update,
            attention_adam_lr=c.attention_adam_lr,
            attention_warmup=c.attention_warmup,
        )
    if c.algo == "acktr":
        extra = {
            "kfac_momentum": c.kfac_momentum,
            "kfac_stat_decay": c.kfac_stat_decay,
            "kfac_damping": c.kfac_damping,
            "kfac_kl_clip": c.kfac_kl_clip,
            "kfac_eigen_every": c.kfac_eigen_every,
            "kfac_stats_every": c.kfac_stats_every,
            "vf_fisher_coef": c.vf_fisher_coef,
            "attention_lr": c.attention_lr,
            "seed": c.seed,
        }
    return (ACKTRAgent if c.algo == "acktr" else A2CAgent)(
        num_actions,
        attention=c.attention,
        pretrained_attention=pretrained_attention,
        device=device,
        hidden_size=c.hidden_size,
        learning_rate=c.learning_rate,
        rmsprop_alpha=c.rmsprop_alpha,
        rmsprop_eps=c.rmsprop_eps,
        gamma=c.gamma,
        entropy_coef=c.entropy_coef,
        value_coef=c.value_coef,
        max_grad_norm=c.max_grad_norm,
        attention_coef=c.attention_coef,
        attention_threshold=c.attention_threshold,
        attention_sparsity=c.attention_sparsity,
        **extra,
    )
