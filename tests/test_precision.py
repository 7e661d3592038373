"""``--precision``: explicit choices, auto by timing on the CPU, bf16 on CUDA where supported."""

import pytest
import torch

import saliency_rl.precision as precision
from saliency_rl.precision import PrecisionError, autocast, choose_precision


def trial():
    x = torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
    layer = torch.nn.Linear(16, 4)
    return layer(x).float().sum()


def test_explicit_precisions_are_not_timed():
    for name in ("fp32", "bf16"):
        choice = choose_precision(name, "cpu")
        assert (choice.requested, choice.chosen, choice.timings_ms) == (name, name, None)
    with pytest.raises(PrecisionError, match="valid: auto, fp32, bf16"):
        choose_precision("fp16", "cpu")
    with pytest.raises(PrecisionError, match="needs a trial"):
        choose_precision("auto", "cpu")


def test_auto_picks_the_faster_and_records_both(monkeypatch):
    monkeypatch.setattr(precision, "time_precisions", lambda *a, **k: {"fp32": 0.2, "bf16": 0.1})
    choice = choose_precision("auto", "cpu", trial, trial_name="linear")
    assert choice.chosen == "bf16" and choice.timings_ms == {"fp32": 200.0, "bf16": 100.0}
    assert choice.to_json()["trial"] == "linear" and "bf16 100 ms" in choice.reason
    monkeypatch.setattr(precision, "time_precisions", lambda *a, **k: {"fp32": 0.1, "bf16": 0.3})
    assert choose_precision("auto", "cpu", trial).chosen == "fp32"
    assert precision.PrecisionChoice.from_json(choice.to_json()) == choice


def test_auto_on_cuda_takes_bf16_where_supported(monkeypatch):
    """On CUDA the rule is support, not the timing (both are still recorded)."""
    monkeypatch.setattr(precision, "time_precisions", lambda *a, **k: {"fp32": 0.1, "bf16": 0.2})
    monkeypatch.setattr(precision, "bf16_supported", lambda device: True)
    assert choose_precision("auto", torch.device("cuda"), trial).chosen == "bf16"
    monkeypatch.setattr(precision, "bf16_supported", lambda device: False)
    assert choose_precision("auto", torch.device("cuda"), trial).chosen == "fp32"


def test_time_precisions_runs_forward_and_backward_in_both():
    seen = []

    def recording():
        seen.append(torch.is_autocast_enabled("cpu"))
        return trial()

    times = precision.time_precisions(recording, torch.device("cpu"), budget_s=0.0)
    assert set(times) == {"fp32", "bf16"} and all(t > 0 for t in times.values())
    assert seen.count(True) == seen.count(False) == 3  # a warm-up and 2 rounds each


def test_autocast_runs_matrix_work_in_bf16_only_when_asked():
    x, w = torch.randn(4, 4), torch.randn(4, 4)
    with autocast("bf16", "cpu"):
        assert (x @ w).dtype == torch.bfloat16
    with autocast("fp32", "cpu"):
        assert (x @ w).dtype == torch.float32
