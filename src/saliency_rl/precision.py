"""``--precision auto|fp32|bf16``: one rule for every trainer, decided by a measurement.

``bf16`` runs the networks' matrix work (convolutions, linear layers) under
``torch.autocast`` in bfloat16; weights, gradients and optimiser state stay fp32, and bf16
has fp32's exponent range, so no loss scaling is needed. Whether it is faster depends on
the hardware: oneDNN runs bf16 convolutions about 2x faster on CPUs with AVX512-BF16 or AMX
(Intel Sapphire Rapids, AMD Zen 4), and slower than fp32 where bf16 is emulated (earlier
Xeons). So ``auto`` times a short forward + backward of the run's own networks in both
precisions and keeps the faster (about a second); on CUDA it takes bf16 wherever the GPU
supports it (Ampere and later), timing both only to record them.

What must stay fp32 is the caller's to keep there: under autocast, cast the network outputs
that feed targets and losses with ``.float()`` (Q values, log-probabilities), and keep
scalars such as SAC's temperature as fp32 parameters.

A trainer (SAC today; BC, A2C and the pretraining loops the same way) uses it with one call
at start and one context manager around each forward::

    from saliency_rl.precision import autocast, choose_precision

    def trial() -> torch.Tensor:        # the actual networks on a batch of the run's shapes
        return loss_of(copy_of_model, synthetic_batch)

    choice = choose_precision(config.precision, device, trial)
    header["precision"] = choice.to_json()   # into the run's config.json
    ...
    with autocast(choice.chosen, device):
        out = model(batch)
    loss = criterion(out.float(), target)    # the loss in fp32
    loss.backward()                          # outside autocast, as torch recommends

``trial`` must leave training untouched: run it on copies of the networks (or zero their
gradients after) and draw no numbers from the training random streams. A resumed run reads
its ``chosen`` precision back from config.json and never measures again, so a run keeps one
precision (and resumes bit for bit).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from typing import Any

import torch

from saliency_rl.errors import SaliencyRLError

PRECISIONS = ("auto", "fp32", "bf16")
"""What a user may ask for."""
CHOSEN = ("fp32", "bf16")
"""What a run trains in."""


class PrecisionError(SaliencyRLError, ValueError):
    """An unknown precision, or bf16 asked for on a device without it."""


@dataclass
class PrecisionChoice:
    """The precision a run trains in and why (``config.json["precision"]``)."""

    requested: str
    """What was asked for: auto, fp32 or bf16."""
    chosen: str
    """What the run trains in: fp32 or bf16."""
    device: str
    """The device it was decided for."""
    timings_ms: dict[str, float] | None
    """Median milliseconds of one forward + backward of the trial per precision (auto only)."""
    trial: str
    """What was timed (networks, batch), or empty where nothing was."""
    reason: str
    """One line: why this precision."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> PrecisionChoice:
        return cls(**obj)


def check_precision(name: str) -> str:
    """``name`` if it is one of PRECISIONS, else PrecisionError listing them."""
    if name not in PRECISIONS:
        raise PrecisionError(f"unknown precision {name!r}; valid: {', '.join(PRECISIONS)}")
    return name


def bf16_supported(device: torch.device) -> bool:
    """Whether the device runs bf16 natively: a CUDA GPU that supports it, a CPU with oneDNN's
    bf16 kernels (AVX512-BF16 / AMX). Elsewhere bf16 autocast still works, emulated."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def autocast(precision: str, device: torch.device | str) -> AbstractContextManager:
    """The autocast context of a chosen precision: bf16 autocast, or nothing for fp32."""
    device_type = torch.device(device).type
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_once(trial: Callable[[], torch.Tensor], precision: str, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    with autocast(precision, device):
        loss = trial()
    loss.float().backward()
    _sync(device)
    return time.perf_counter() - start


def time_precisions(
    trial: Callable[[], torch.Tensor],
    device: torch.device,
    *,
    budget_s: float = 1.5,
    min_rounds: int = 2,
    max_rounds: int = 5,
) -> dict[str, float]:
    """Median seconds of ``trial`` (forward, then backward of its loss) per precision.

    One untimed call of each first (oneDNN builds its kernels then), then rounds that
    alternate fp32 and bf16, so a change of machine load hits both alike, until
    ``budget_s`` is spent (at least ``min_rounds``, at most ``max_rounds``).
    """
    for precision in CHOSEN:
        _time_once(trial, precision, device)
    times: dict[str, list[float]] = {p: [] for p in CHOSEN}
    start = time.perf_counter()
    for round_ in range(max_rounds):
        if round_ >= min_rounds and time.perf_counter() - start > budget_s:
            break
        for precision in CHOSEN:
            times[precision].append(_time_once(trial, precision, device))
    return {p: statistics.median(t) for p, t in times.items()}


def choose_precision(
    requested: str,
    device: torch.device | str,
    trial: Callable[[], torch.Tensor] | None = None,
    *,
    trial_name: str = "",
    budget_s: float = 1.5,
) -> PrecisionChoice:
    """The precision a run trains in.

    Args:
        requested: auto, fp32 or bf16.
        device: where the run trains.
        trial: the forward of the run's networks returning a scalar loss (see the module
            docstring); needed for ``auto``.
        trial_name: what ``trial`` runs, for the record.
        budget_s: about how long the timing may take.

    Raises:
        PrecisionError: an unknown precision; bf16 on a device type autocast cannot run in
        bf16; auto without a trial.
    """
    check_precision(requested)
    device = torch.device(device)
    if device.type not in ("cpu", "cuda"):
        if requested == "bf16":
            raise PrecisionError(f"bf16 is supported on cpu and cuda, not {device.type}")
        return PrecisionChoice(requested, "fp32", str(device), None, "", "fp32 off cpu / cuda")
    if requested != "auto":
        return PrecisionChoice(requested, requested, str(device), None, "", "asked for")
    if trial is None:
        raise PrecisionError("precision auto needs a trial forward to time")
    timings = time_precisions(trial, device, budget_s=budget_s)
    timings_ms = {p: round(1000 * t, 3) for p, t in timings.items()}
    if device.type == "cuda":
        chosen = "bf16" if bf16_supported(device) else "fp32"
        reason = f"CUDA: bf16 where the GPU supports it ({'yes' if chosen == 'bf16' else 'no'})"
    else:
        chosen = "bf16" if timings["bf16"] < timings["fp32"] else "fp32"
        reason = (
            f"faster forward + backward: fp32 {timings_ms['fp32']:.0f} ms, "
            f"bf16 {timings_ms['bf16']:.0f} ms"
        )
    return PrecisionChoice(requested, chosen, str(device), timings_ms, trial_name, reason)


def on_a_copy(
    model: torch.nn.Module, loss_of: Callable[[Any], torch.Tensor]
) -> Callable[[], torch.Tensor]:
    """A ``trial`` for ``choose_precision``: ``loss_of(copy)`` on a deep copy of ``model`` in
    training mode, its gradients cleared each call, so timing it leaves the run's weights and
    gradients alone."""
    import copy

    twin = copy.deepcopy(model).train()

    def trial() -> torch.Tensor:
        twin.zero_grad(set_to_none=True)
        return loss_of(twin)

    return trial


def decide_precision(
    requested: str,
    device: torch.device | str,
    make_trial: Callable[[], Callable[[], torch.Tensor]] | None = None,
    *,
    recorded: dict[str, Any] | None = None,
    trial_name: str = "",
) -> PrecisionChoice:
    """The precision of a run, one rule for every trainer: a resumed run's ``recorded``
    choice (``PrecisionChoice.to_json``) as it is, never measured again, so it resumes bit
    for bit; else :func:`choose_precision` of ``requested``. ``make_trial`` builds the timed
    trial (its batch, copies of the networks) and is called only for ``auto``, under a forked
    torch random stream, so a trial that draws masks or noise leaves the run's stream as a
    run without it would have it. The caller records the choice with the run."""
    if recorded:
        return PrecisionChoice.from_json(recorded)
    device = torch.device(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        trial = make_trial() if requested == "auto" and make_trial is not None else None
        return choose_precision(requested, device, trial, trial_name=trial_name)


__all__ = [
    "PRECISIONS",
    "PrecisionChoice",
    "PrecisionError",
    "autocast",
    "bf16_supported",
    "check_precision",
    "choose_precision",
    "decide_precision",
    "on_a_copy",
    "time_precisions",
]
