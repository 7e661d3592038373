"""K-FAC (algos.kfac) and the ACKTR agent: factor shapes and values, faster than SGD on an
ill-conditioned regression, the eigen-decomposition guard, state round trips, and which
parameters K-FAC and the attention optimizer step."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from saliency_rl.algos.a2c import A2C_PRESETS, ACKTRAgent, Rollout, a2c_config
from saliency_rl.algos.kfac import KFAC, KFACWarning, kfac_layers


class Small(nn.Module):
    """conv 3->4 3x3 stride 2, pad 1 (bias) -> conv 4->2 2x2 (no bias) -> linear 18->5."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(4, 2, 2, bias=False)
        self.fc = nn.Linear(2 * 3 * 3, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv2(torch.relu(self.conv1(x)))).flatten(1))


def record(model: nn.Module, kfac: KFAC, batches: list[torch.Tensor]) -> None:
    """Forward every batch (as the acting passes of a rollout), then one Fisher backward of
    the mean sampled-label cross entropy over all of them."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.cat([model(x) for x in batches])
    labels = torch.multinomial(torch.softmax(logits.detach(), -1), 1, generator=generator)
    loss = -torch.log_softmax(logits, -1).gather(1, labels).mean()
    with kfac.recording_gradients():
        loss.backward()
    kfac.update_stats()


def test_factors_have_the_right_shapes_for_conv_and_linear():
    torch.manual_seed(0)
    model = Small()
    kfac = KFAC(kfac_layers(model))
    record(model, kfac, [torch.randn(6, 3, 7, 7)])
    shapes = [(tuple(f["A"].shape), tuple(f["G"].shape)) for f in kfac.factors]
    # conv1: 3*3*3 inputs + bias; conv2: 4*2*2 inputs, no bias; fc: 18 inputs + bias
    assert shapes == [((28, 28), (4, 4)), ((16, 16), (2, 2)), ((19, 19), (5, 5))]
    for factors in kfac.factors:
        for factor in factors.values():
            assert torch.allclose(factor, factor.t(), atol=1e-6)  # symmetric
            assert float(torch.linalg.eigvalsh(factor.double()).min()) > -1e-6  # PSD


def test_linear_factors_are_the_per_sample_second_moments():
    """A = E[a aᵀ] with a bias 1 appended; G = E[s sᵀ] of per-sample output gradients."""
    torch.manual_seed(1)
    layer = nn.Linear(4, 3)
    kfac = KFAC([layer])
    x = torch.randn(10, 4)
    record(layer, kfac, [x])
    a = torch.cat([x, torch.ones(10, 1)], 1)
    assert torch.allclose(kfac.factors[0]["A"], a.t() @ a / 10, atol=1e-5)
    # per-sample gradients of -log p(label) w.r.t. the logits: softmax - onehot
    generator = torch.Generator().manual_seed(0)
    logits = layer(x).detach()
    labels = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator).squeeze(1)
    s = torch.softmax(logits, -1) - nn.functional.one_hot(labels, 3).float()
    assert torch.allclose(kfac.factors[0]["G"], s.t() @ s / 10, atol=1e-5)


def test_several_forward_passes_make_one_batch():
    """The acting passes of a rollout: two half batches give the factors of the whole."""
    torch.manual_seed(2)
    model = Small()
    x = torch.randn(8, 3, 7, 7)
    whole, halves = KFAC(kfac_layers(model)), None
    record(model, whole, [x])
    whole.remove_hooks()
    halves = KFAC(kfac_layers(model))
    record(model, halves, [x[:4], x[4:]])
    for a, b in zip(whole.factors, halves.factors, strict=True):
        for key in ("A", "G"):
            assert torch.allclose(a[key], b[key], rtol=1e-4, atol=1e-6), key


def test_no_grad_passes_are_not_recorded():
    model = Small()
    kfac = KFAC(kfac_layers(model))
    with torch.no_grad():
        model(torch.randn(2, 3, 7, 7))
    assert all(not kept for kept in kfac._inputs)
    with pytest.raises(RuntimeError, match="no recorded batch"):
        kfac.update_stats()


def regression(seed: int = 0):
    """An ill-conditioned least-squares problem: inputs scaled 0.1 to 1 (condition 100)."""
    rng = np.random.default_rng(seed)
    scales = np.geomspace(0.1, 1.0, 8)
    x = torch.from_numpy((rng.standard_normal((256, 8)) * scales).astype(np.float32))
    w = torch.from_numpy(rng.standard_normal((3, 8)).astype(np.float32))
    return x, x @ w.t()


def fit(optimizer: str, steps: int = 30, lr: float = 0.5) -> list[float]:
    x, y = regression()
    torch.manual_seed(0)
    layer = nn.Linear(8, 3, bias=False)
    generator = torch.Generator().manual_seed(0)
    if optimizer == "kfac":  # momentum 0 and no trust region: the plain natural gradient
        opt = KFAC([layer], lr=lr, momentum=0.0, damping=1e-4, kl_clip=1e9, eigen_every=1)
    else:
        opt = torch.optim.SGD(layer.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        prediction = layer(x)
        loss = 0.5 * (prediction - y).square().sum(-1).mean()
        losses.append(float(loss.detach()))
        if optimizer == "kfac":  # Gaussian likelihood: sampled targets prediction + N(0, 1)
            noise = torch.randn(prediction.shape, generator=generator)
            fisher = 0.5 * (prediction - (prediction + noise).detach()).square().sum(-1).mean()
            with opt.recording_gradients():
                fisher.backward(retain_graph=True)
            opt.update_stats()
        layer.zero_grad()
        loss.backward()
        opt.step()
    return losses


def test_kfac_reduces_a_regression_loss_faster_than_sgd_at_equal_lr():
    kfac, sgd = fit("kfac"), fit("sgd")
    assert kfac[0] == pytest.approx(sgd[0])  # the same start
    assert kfac[-1] < sgd[-1] / 10, (kfac[-1], sgd[-1])
    assert kfac[-1] < kfac[0] / 100
    # at every step at least as low as SGD (tiny slack for the sampled Fisher's noise)
    assert all(k <= s * 1.05 + 1e-6 for k, s in zip(kfac[1:], sgd[1:], strict=True))


def kfac_step_setup():
    torch.manual_seed(3)
    model = Small()
    kfac = KFAC(kfac_layers(model), eigen_every=1)
    x = torch.randn(6, 3, 7, 7)
    record(model, kfac, [x])
    model.zero_grad()
    model(x).square().mean().backward()
    return model, kfac, x


def test_a_failing_eigh_skips_the_step_counts_and_warns(monkeypatch):
    model, kfac, x = kfac_step_setup()
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def fails(*args, **kwargs):
        raise torch.linalg.LinAlgError("the algorithm failed to converge")

    monkeypatch.setattr(torch.linalg, "eigh", fails)
    with pytest.warns(KFACWarning, match="skipped .*failed to converge"):
        metrics = kfac.step()
    assert metrics["kfac_skipped"] == 1 and kfac.skipped == 1
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # nothing moved
    monkeypatch.undo()  # eigh works again: the next step decomposes and moves
    assert kfac.step()["kfac_skipped"] == 1
    after = model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert all(torch.isfinite(v).all() for v in after.values())


def test_eigh_returning_nan_skips_the_step(monkeypatch):
    model, kfac, _ = kfac_step_setup()
    real = torch.linalg.eigh

    def nan_values(matrix):
        values, vectors = real(matrix)
        return values * float("nan"), vectors

    monkeypatch.setattr(torch.linalg, "eigh", nan_values)
    with pytest.warns(KFACWarning, match="returned NaN/Inf"):
        assert kfac.step()["kfac_skipped"] == 1
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_a_nan_factor_skips_the_step_and_is_estimated_again():
    model, kfac, x = kfac_step_setup()
    kfac.factors[1]["A"][0, 0] = float("nan")
    with pytest.warns(KFACWarning, match="factor A of layer 1 holds NaN"):
        assert kfac.step()["kfac_skipped"] == 1
    assert kfac.factors[1]["A"] is None  # dropped, the next batch starts it again
    assert all(torch.isfinite(p).all() for p in model.parameters())
    record(model, kfac, [x])
    model.zero_grad()
    model(x).square().mean().backward()
    metrics = kfac.step()
    assert metrics["kfac_skipped"] == 1 and 0 < metrics["kl_scale"] <= 1
    assert all(torch.isfinite(f).all() for layer in kfac.factors for f in layer.values())
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_the_kl_clip_bounds_the_step():
    model, kfac, _ = kfac_step_setup()
    kfac.kl_clip = 1e-12
    before = [p.clone() for p in model.parameters()]
    assert kfac.step()["kl_scale"] < 1
    moved = sum(
        float((p - b).detach().square().sum())
        for p, b in zip(model.parameters(), before, strict=True)
    )
    assert 0 < moved < 1e-6


# ---------------------------------------------------------------------- the ACKTR agent
T, N, A = 3, 2, 5


def random_rollout(seed: int = 0) -> Rollout:
    rng = np.random.default_rng(seed)
    dones = np.zeros((T, N), np.float32)
    dones[1, 0] = 1.0
    return Rollout(
        obs=torch.from_numpy(rng.integers(0, 256, (T + 1, N, 4, 84, 84), np.uint8)),
        actions=torch.from_numpy(rng.integers(0, A, (T, N))),
        rewards=torch.from_numpy(rng.choice([-1.0, 0.0, 1.0], (T, N)).astype(np.float32)),
        dones=torch.from_numpy(dones),
    )


def pairs(seed: int = 1):
    rng = np.random.default_rng(seed)
    return tuple(torch.from_numpy(rng.integers(0, 256, (N, 1, 84, 84), np.uint8)) for _ in "st")


def acktr_agent(attention: str, eigen_every: int = 1) -> ACKTRAgent:
    torch.manual_seed(0)
    return ACKTRAgent(A, attention=attention, kfac_eigen_every=eigen_every)


@pytest.mark.parametrize("attention", ["none", "joint"])
def test_acktr_steps_the_actor_critic_by_kfac_and_the_attention_by_rmsprop(attention):
    agent = acktr_agent(attention)
    names = {id(p): n for n, p in agent.net.named_parameters()}
    kfac_names = {names[id(p)] for p in agent.kfac.params}
    assert kfac_names and all(n.split(".")[0] in ("cnn", "policy", "value") for n in kfac_names)
    assert len(agent.kfac.modules) == 6  # 3 convs, fc, policy head, value head
    attention_names = {names[id(p)] for p in agent.attention_params}
    assert all(n.startswith("attention.") for n in attention_names)
    assert bool(attention_names) == (attention == "joint")
    before = {k: v.clone() for k, v in agent.net.state_dict().items()}
    metrics = agent.update(random_rollout(), pairs() if attention == "joint" else None)
    assert metrics["kfac_skipped"] == 0 and 0 < metrics["kl_scale"] <= 1
    after = agent.net.state_dict()
    for prefix in ("cnn.", "policy.", "value.", "attention."):
        keys = [k for k in before if k.startswith(prefix)]
        if prefix == "attention." and attention == "none":
            assert not keys
            continue
        assert any(not torch.equal(before[k], after[k]) for k in keys), prefix
    assert all(torch.isfinite(v).all() for v in after.values())


@pytest.mark.slow
def test_acktr_state_round_trip_gives_the_same_next_update():
    """Factors, eigen-decompositions (reused: eigen_every 10), momentum and the Fisher
    sampling generator all travel in optimizer_state()."""
    first = acktr_agent("joint", eigen_every=10)
    first.update(random_rollout(0), pairs(1))
    state = copy.deepcopy(first.optimizer_state())  # the live factors change in place
    weights = {k: v.clone() for k, v in first.net.state_dict().items()}
    first.update(random_rollout(2), pairs(3))

    second = acktr_agent("joint", eigen_every=10)
    second.net.load_state_dict(weights)
    second.load_optimizer_state(state)
    second.update(random_rollout(2), pairs(3))
    for (name, a), b in zip(
        first.net.state_dict().items(), second.net.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


def test_acktr_preset_and_config():
    preset = A2C_PRESETS["acktr"]
    assert (preset.algo, preset.num_envs, preset.num_steps) == ("acktr", 32, 20)
    assert (preset.learning_rate, preset.kfac_kl_clip, preset.kfac_stat_decay) == (
        0.25,
        0.001,
        0.99,
    )
    with pytest.raises(Exception, match="unknown algo "):
        a2c_config(algo="trpo")
    with pytest.raises(Exception, match="kfac_stat_decay must be in"):
        a2c_config("acktr", kfac_stat_decay=1.0)


def test_a_float32_eigh_failure_is_retried_in_float64(monkeypatch):
    model, kfac, _ = kfac_step_setup()
    real = torch.linalg.eigh
    dtypes = []

    def fails_in_float32(matrix):
        dtypes.append(matrix.dtype)
        if matrix.dtype == torch.float32:
            raise torch.linalg.LinAlgError("the algorithm failed to converge")
        return real(matrix)

    monkeypatch.setattr(torch.linalg, "eigh", fails_in_float32)
    metrics = kfac.step()
    assert metrics["kfac_skipped"] == 0 and kfac.skipped == 0
    assert torch.float64 in dtypes and all(e["QA"].dtype == torch.float32 for e in kfac.eigen)
