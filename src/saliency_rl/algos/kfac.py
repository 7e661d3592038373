"""K-FAC: Kronecker-factored natural gradient for the Linear and Conv2d layers of a network.

The optimizer of ACKTR (Wu, Mansimov, Liao, Grosse, Ba 2017), written after the method as
in OpenAI baselines (``baselines/acktr/kfac.py``) and ikostrikov's pytorch-a2c-ppo-acktr.
For a layer with weights W (out x in, a bias as an extra input column of ones), the
Fisher block is approximated by A ⊗ G with

- A = E[a aᵀ], the second moment of the layer's inputs (for a convolution: of its input
  patches, KFC of Grosse & Martens 2016, divided by the number of output positions L);
- G = E[g gᵀ], the second moment of the gradients of a *sampled-Fisher* loss with respect
  to the layer's outputs (for a convolution: summed over positions, times L). The sampled
  Fisher loss uses actions sampled from the policy and values with unit Gaussian noise
  (``ACKTRAgent``), so that G estimates the Fisher of the model's own predictive
  distribution, not the empirical one.

Both are running averages (``stat_decay`` 0.99). Every ``eigen_every`` steps each factor is
eigen-decomposed (``torch.linalg.eigh``); the preconditioned gradient is
``Q_G [ (Q_Gᵀ ∇W Q_A) / (d_G d_Aᵀ + damping) ] Q_Aᵀ``. The step is then scaled by
``min(1, sqrt(kl_clip / (lr² ∇ᵀ F⁻¹ ∇)))`` (the trust region: the predicted KL of the
update stays below ``kl_clip``) and applied with SGD with momentum (lr (1 - momentum),
as both reference implementations).

Failures: a factor that holds NaN/Inf, or an ``eigh`` that raises (no convergence) or
returns NaN/Inf both in float32 and, retried, in float64, makes that step a *skipped step*: no K-FAC layer changes (the momentum
buffers neither), the decomposition is retried on the next step, a factor that holds
NaN/Inf is dropped and re-estimated from the next batch, ``skipped`` counts it and a
:class:`KFACWarning` says why. A skipped step was chosen over a plain-gradient step: at
ACKTR's learning rate (0.25, tuned for natural-gradient steps) a raw gradient step can be
far larger than the trust region.

Recording: a forward hook keeps the input of every tracked layer on every forward pass
that builds a graph (``torch.is_grad_enabled()``: acting passes of a rollout, not
``no_grad`` evaluation), and a tensor hook on its output keeps the output gradient while
:meth:`KFAC.recording_gradients` is active (the Fisher backward only). Several forward
passes (the steps of a rollout) form one batch. :meth:`KFAC.update_stats` turns what was
recorded into the factors; :meth:`KFAC.clear` drops it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

EIGEN_FLOOR = 1e-6  # eigenvalues below this are taken as 0 (numerical noise), as baselines


class KFACWarning(UserWarning):
    """A K-FAC step was skipped (failed eigen-decomposition or non-finite factor/update)."""


class KFAC:
    """K-FAC natural-gradient optimizer for ``modules`` (nn.Linear and nn.Conv2d).

    Args:
        modules: the layers to precondition; their parameters (weight, bias) are the ones
            this optimizer steps.
        lr: learning rate (ACKTR: 0.25).
        momentum: SGD momentum (0.9); the SGD rate is lr * (1 - momentum).
        stat_decay: running-average decay of the factors (0.99).
        damping: added to the eigenvalue products (Tikhonov damping; 0.01).
        kl_clip: trust region: bound on the KL predicted by the Fisher (0.001).
        eigen_every: eigen-decompose the factors every this many steps (10).
    """

    def __init__(
        self,
        modules: Iterable[nn.Module],
        *,
        lr: float = 0.25,
        momentum: float = 0.9,
        stat_decay: float = 0.99,
        damping: float = 0.01,
        kl_clip: float = 0.001,
        eigen_every: int = 10,
    ) -> None:
        self.modules = list(modules)
        for module in self.modules:
            if not isinstance(module, nn.Linear | nn.Conv2d):
                raise TypeError(f"K-FAC supports nn.Linear and nn.Conv2d, not {type(module)}")
            if isinstance(module, nn.Conv2d) and (module.groups != 1 or module.dilation != (1, 1)):
                raise TypeError("K-FAC supports convolutions without groups or dilation")
        if not self.modules:
            raise ValueError("K-FAC needs at least one nn.Linear or nn.Conv2d layer")
        self.lr, self.momentum, self.stat_decay = lr, momentum, stat_decay
        self.damping, self.kl_clip, self.eigen_every = damping, kl_clip, eigen_every
        self.params = [p for m in self.modules for p in m.parameters()]
        self.sgd = torch.optim.SGD(self.params, lr=lr * (1 - momentum), momentum=momentum)
        self.steps = 0
        self.skipped = 0
        self.factors: list[dict[str, Tensor | None]] = [
            {"A": None, "G": None} for _ in self.modules
        ]
        self.eigen: list[dict[str, Tensor]] | None = None  # per layer QA, dA, QG, dG
        self._inputs: list[list[Tensor]] = [[] for _ in self.modules]
        self._grads: list[list[Tensor]] = [[] for _ in self.modules]
        self._recording_grads = False
        self._handles = [
            m.register_forward_hook(self._forward_hook(i)) for i, m in enumerate(self.modules)
        ]

    # ------------------------------------------------------------------ recording
    def _forward_hook(self, index: int):
        def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
            if not torch.is_grad_enabled() or not output.requires_grad:
                return
            self._inputs[index].append(inputs[0].detach())

            def keep(grad: Tensor) -> None:
                if self._recording_grads:
                    self._grads[index].append(grad.detach())

            output.register_hook(keep)

        return hook

    @contextmanager
    def recording_gradients(self) -> Iterator[None]:
        """Within it, backward passes record the tracked layers' output gradients."""
        self._recording_grads = True
        try:
            yield
        finally:
            self._recording_grads = False

    def clear(self) -> None:
        """Forget the recorded inputs and gradients."""
        for kept in (*self._inputs, *self._grads):
            kept.clear()

    def remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()

    # ------------------------------------------------------------------ factors
    def _covariances(self, index: int) -> tuple[Tensor, Tensor]:
        """(A, G) of layer ``index`` from the recorded batch (see the module docstring)."""
        module = self.modules[index]
        inputs, grads = self._inputs[index], self._grads[index]
        batch = sum(g.shape[0] for g in grads)
        if batch == 0 or sum(x.shape[0] for x in inputs) == 0:
            raise RuntimeError(
                "K-FAC has no recorded batch: run the forward passes with gradients enabled "
                "and the Fisher backward inside recording_gradients() before update_stats()"
            )
        bias = module.bias is not None
        rows = 0
        a_sum = g_sum = None
        for x in inputs:  # one forward pass at a time: the patches of a big batch are large
            if isinstance(module, nn.Conv2d):
                patches = F.unfold(
                    x, module.kernel_size, padding=module.padding, stride=module.stride
                )  # (n, C*kh*kw, L)
                positions = patches.shape[-1]
                a = patches.transpose(1, 2).reshape(-1, patches.shape[1])
                if bias:
                    a = torch.cat([a, a.new_ones(a.shape[0], 1)], 1)
                a = a / positions
            else:
                a = x.reshape(-1, x.shape[-1])
                if bias:
                    a = torch.cat([a, a.new_ones(a.shape[0], 1)], 1)
            rows += x.shape[0]
            outer = a.t() @ a
            a_sum = outer if a_sum is None else a_sum + outer
        for g in grads:
            if isinstance(module, nn.Conv2d):  # per position; (g L)ᵀ(g L) / L = L gᵀg
                positions = g.shape[2] * g.shape[3]
                g = g.permute(0, 2, 3, 1).reshape(-1, g.shape[1])
                outer = (g.t() @ g) * positions
            else:
                g = g.reshape(-1, g.shape[-1])
                outer = g.t() @ g
            g_sum = outer if g_sum is None else g_sum + outer
        # The Fisher loss is a mean over the batch: a per-sample gradient is batch x the
        # recorded one, so E[s sᵀ] = batch² Σ g gᵀ / batch.
        return a_sum / rows, g_sum * batch

    @torch.no_grad()
    def update_stats(self) -> None:
        """Fold the recorded batch into the running factors, then forget it."""
        for index, factors in enumerate(self.factors):
            a, g = self._covariances(index)
            for key, new in (("A", a), ("G", g)):
                old = factors[key]
                if old is None:  # the first batch starts the average (no zero bias)
                    factors[key] = new.clone()
                else:
                    old.mul_(self.stat_decay).add_(new, alpha=1 - self.stat_decay)
        self.clear()

    # ------------------------------------------------------------------ the step
    def _decompose(self) -> str | None:
        """Eigen-decompose every factor; None on success, else why it failed (nothing kept)."""
        eigen = []
        for index, factors in enumerate(self.factors):
            layer: dict[str, Tensor] = {}
            for key in ("A", "G"):
                factor = factors[key]
                if factor is None:
                    return "no factor statistics yet (call update_stats first)"
                if not torch.isfinite(factor).all():
                    factors[key] = None  # re-estimated from the next batch
                    return f"factor {key} of layer {index} holds NaN/Inf (reset)"
                decomposed = _eigh(factor)
                if isinstance(decomposed, str):
                    return f"eigh of factor {key} of layer {index} {decomposed}"
                values, vectors = decomposed
                layer["d" + key] = values * (values > EIGEN_FLOOR)
                layer["Q" + key] = vectors
            eigen.append(layer)
        self.eigen = eigen
        return None

    def _skip(self, reason: str) -> dict[str, float]:
        self.eigen = None  # decompose again on the next step
        self.skipped += 1
        self.steps += 1
        warnings.warn(
            f"K-FAC step {self.steps} skipped ({self.skipped} so far): {reason}",
            KFACWarning,
            stacklevel=3,
        )
        return {"kfac_skipped": float(self.skipped), "kl_scale": float("nan")}

    def _gradient(self, module: nn.Module) -> Tensor:
        grad = module.weight.grad
        grad = grad.reshape(grad.shape[0], -1) if grad is not None else None
        if grad is None:
            grad = torch.zeros_like(module.weight).reshape(module.weight.shape[0], -1)
        if module.bias is not None:
            bias = module.bias.grad
            bias = bias if bias is not None else torch.zeros_like(module.bias)
            grad = torch.cat([grad, bias[:, None]], 1)
        return grad

    @torch.no_grad()
    def step(self) -> dict[str, float]:
        """Precondition the tracked parameters' gradients and take one step; metrics.

        Returns ``kfac_skipped`` (the count so far) and ``kl_scale`` (the trust-region factor
        applied, NaN on a skipped step).
        """
        if self.eigen is None or self.steps % self.eigen_every == 0:
            failure = self._decompose()
            if failure is not None:
                return self._skip(failure)
        updates, vfv = [], torch.zeros((), dtype=torch.float64)
        for module, layer in zip(self.modules, self.eigen, strict=True):
            grad = self._gradient(module)
            rotated = layer["QG"].t() @ grad @ layer["QA"]
            rotated = rotated / (layer["dG"][:, None] * layer["dA"][None, :] + self.damping)
            update = layer["QG"] @ rotated @ layer["QA"].t()
            updates.append(update)
            vfv += (update * grad).sum().double() * self.lr**2
        if not torch.isfinite(vfv) or not all(torch.isfinite(u).all() for u in updates):
            return self._skip("the preconditioned gradient holds NaN/Inf")
        scale = min(1.0, math.sqrt(self.kl_clip / float(vfv))) if float(vfv) > 0 else 1.0
        for module, update in zip(self.modules, updates, strict=True):
            update = update * scale
            if module.bias is not None:
                module.bias.grad = update[:, -1].contiguous()
                update = update[:, :-1]
            module.weight.grad = update.reshape(module.weight.shape)
        self.sgd.step()
        self.steps += 1
        return {"kfac_skipped": float(self.skipped), "kl_scale": scale}

    def zero_grad(self) -> None:
        self.sgd.zero_grad(set_to_none=True)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs: factors, eigen-decompositions, momentum, counters."""
        return {
            "steps": self.steps,
            "skipped": self.skipped,
            "factors": [{k: v for k, v in f.items() if v is not None} for f in self.factors],
            "eigen": self.eigen,
            "sgd": self.sgd.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps, self.skipped = int(state["steps"]), int(state["skipped"])
        device = self.params[0].device
        self.factors = [
            {k: (f[k].to(device) if k in f else None) for k in ("A", "G")} for f in state["factors"]
        ]
        eigen = state["eigen"]
        self.eigen = (
            None if eigen is None else [{k: v.to(device) for k, v in e.items()} for e in eigen]
        )
        self.sgd.load_state_dict(state["sgd"])


def _eigh(factor: Tensor) -> tuple[Tensor, Tensor] | str:
    """(eigenvalues, eigenvectors) of a symmetric factor, or why it failed.

    First in the factor's dtype (float32, as both reference implementations); where LAPACK
    does not converge (it happens in float32 on rank-deficient factors with many equal
    eigenvalues, e.g. the 1569 x 1569 input factor of the linear layer early in training)
    or returns NaN/Inf, once more in float64.
    """
    failure = ""
    for dtype in dict.fromkeys((factor.dtype, torch.float64)):
        try:
            values, vectors = torch.linalg.eigh(factor.to(dtype))
        except RuntimeError as error:  # torch.linalg.LinAlgError: no convergence
            failure = f"failed: {error}"
            continue
        if torch.isfinite(values).all() and torch.isfinite(vectors).all():
            # contiguous: LAPACK returns column-major eigenvectors, a restored checkpoint
            # row-major ones; the same layout keeps the matmuls bit for bit alike on resume
            return values.to(factor.dtype), vectors.to(factor.dtype).contiguous()
        failure = "returned NaN/Inf"
    return failure


def kfac_layers(module: nn.Module) -> list[nn.Module]:
    """The nn.Linear and nn.Conv2d layers of ``module`` with trainable weights, in order."""
    return [
        m
        for m in module.modules()
        if isinstance(m, nn.Linear | nn.Conv2d) and m.weight.requires_grad
    ]
