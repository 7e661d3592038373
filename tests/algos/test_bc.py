"""Behaviour cloning: network shapes, chunk targets and execution, overfitting one
demonstration, the LSTM history reset between episodes, exact resume."""

import json

import numpy as np
import pytest
import torch

from saliency_rl.algos.bc import (
    BCConfig,
    BCPolicyNet,
    ChunkExecutor,
    bc_loss,
    chunk_targets,
    num_val_episodes,
    preset_config,
)
from saliency_rl.algos.bc_data import split_episodes
from saliency_rl.algos.bc_policy import evaluate_bc, load_policy
from saliency_rl.algos.bc_trainer import resume_bc, train_bc
from saliency_rl.checkpoint import load_checkpoint
from saliency_rl.data.dataset import Dataset, FieldSpec
from saliency_rl.runs import RunError


def test_network_shapes_and_causality():
    torch.manual_seed(0)
    net = BCPolicyNet(state_dim=10, action_dim=4, chunk=3, mlp_hidden=(16, 16), lstm_hidden=8)
    states = torch.randn(2, 5, 10)
    chunks, (h, c) = net(states)
    assert chunks.shape == (2, 5, 3, 4)
    assert h.shape == c.shape == (1, 2, 8)
    # Causal: changing the last step changes no earlier output (padding is harmless).
    changed = states.clone()
    changed[:, -1] += 5.0
    again, _ = net(changed)
    assert torch.allclose(again[:, :-1], chunks[:, :-1])
    assert not torch.allclose(again[:, -1], chunks[:, -1])
    # The visarl-bc preset is the paper's architecture.
    config = preset_config("visarl-bc")
    assert config.mlp_hidden == (256, 256) and config.lstm_hidden == 256


def test_chunk_targets_and_masked_loss():
    actions = np.arange(8, dtype=np.float32).reshape(4, 2)  # 4 steps, 2-d actions
    targets, mask = chunk_targets(actions, 3)
    assert targets.shape == (4, 3, 2) and mask.shape == (4, 3)
    np.testing.assert_array_equal(targets[0], actions[0:3])
    np.testing.assert_array_equal(targets[2, :2], actions[2:4])
    assert mask[2].tolist() == [True, True, False] and mask[3].tolist() == [True, False, False]
    assert not targets[3, 1:].any()  # padding past the end
    net = BCPolicyNet(3, 2, 3, mlp_hidden=(4,), lstm_hidden=4, head_hidden=4)
    states = torch.randn(1, 4, 3)
    t, m = torch.from_numpy(targets)[None], torch.from_numpy(mask)[None]
    predicted, _ = net(states)
    # Masked-out targets do not count: changing them leaves the loss unchanged.
    other = t.clone()
    other[~m] = 100.0
    assert torch.isclose(bc_loss(net, states, t, m), bc_loss(net, states, other, m))
    manual = ((predicted - t) ** 2).mean(-1)[m].mean()
    assert torch.isclose(bc_loss(net, states, t, m), manual)


def test_chunk_execution_modes():
    chunks = [np.full((3, 1), 10.0 * k) + np.arange(3)[:, None] for k in range(5)]
    # chunk k predicted at step k holds 10k + (0, 1, 2) for steps k, k+1, k+2.
    first = ChunkExecutor("first", 3, 0.0)
    assert [first.action(c)[0] for c in chunks] == [0, 10, 20, 30, 40]
    run_all = ChunkExecutor("all", 3, 0.0)
    taken = []
    for step in range(5):
        needs = run_all.needs_prediction()
        assert needs == (step % 3 == 0)
        taken.append(run_all.action(chunks[step] if needs else None)[0])
    assert taken == [0, 1, 2, 30, 31]
    ensemble = ChunkExecutor("ensemble", 3, 0.0)  # decay 0: the plain mean
    got = [ensemble.action(c)[0] for c in chunks]
    # step 2: predictions 0+2, 10+1, 20+0 -> mean 11
    assert got[:3] == pytest.approx([0.0, (1 + 10) / 2, (2 + 11 + 20) / 3])
    weighted = ChunkExecutor("ensemble", 3, 1.0)
    weighted.action(chunks[0])
    w = np.exp(-np.arange(2))
    assert weighted.action(chunks[1])[0] == pytest.approx((w[0] * 1 + w[1] * 10) / w.sum())
    ensemble.reset()
    assert ensemble.action(chunks[3])[0] == 30  # nothing left from the last episode


def test_split_is_by_episode():
    train, val = split_episodes(10, 0.1, seed=0)
    assert len(val) == 1 and sorted(train + val) == list(range(10))
    assert num_val_episodes(1, 0.5) == 0 and num_val_episodes(3, 0.01) == 1
    with pytest.raises(RunError, match="unknown execution .sometimes.; valid: ensemble"):
        BCConfig(execution="sometimes").validate()


@pytest.fixture(scope="module")
def one_demo(tmp_path_factory):
    """One 12-step demonstration in fake:square's format at 64x64: distinct random frames
    (so every state can be told apart) and smooth actions to memorise."""
    rng = np.random.default_rng(3)
    steps = 12
    dataset = Dataset.create(
        tmp_path_factory.mktemp("bc_demo") / "data",
        env_spec="fake:square",
        env_options={"image_size": 64, "episode_length": steps},
        fields={
            "rgb": FieldSpec("uint8", (3, 64, 64)),
            "proprio": FieldSpec("float32", (2,)),
            "action": FieldSpec("float32", (2,)),
        },
    )
    t = np.arange(steps + 1, dtype=np.float32)
    action = np.stack([np.sin(t / 2), np.cos(t / 3)], 1).astype(np.float32) * 0.8
    action[-1] = 0.0  # the last frame takes no action
    dataset.append_episode(
        {
            "rgb": rng.integers(0, 256, (steps + 1, 3, 64, 64), dtype=np.uint8),
            "proprio": rng.normal(size=(steps + 1, 2)).astype(np.float32),
            "action": action,
        }
    )
    return dataset


def tiny(**changes):
    settings = dict(val_fraction=0.0, eval_episodes=0, steps=400, learning_rate=1e-2)
    return preset_config("tiny", **{**settings, **changes})


def replay(policy, dataset, steps=None):
    """The policy's actions on the demonstration's observations, from a reset."""
    data = dataset.episode(0)
    policy.reset()
    count = len(data["action"]) - 1 if steps is None else steps
    return np.stack(
        [policy.act({"rgb": data["rgb"][t], "proprio": data["proprio"][t]}) for t in range(count)]
    )


@pytest.mark.slow
def test_tiny_policy_overfits_one_demonstration_and_history_resets(
    one_demo, tiny_multimae_64, tmp_path
):
    run = train_bc(
        one_demo,
        tiny_multimae_64["rgb"],
        tiny(execution="first", chunk=2, history=4, mlp_hidden=(64, 64), lstm_hidden=64),
        out=tmp_path / "run",
        device="cpu",
        progress=False,
    )
    rows = (run / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    losses = [float(r.split(",")[header.index("loss")]) for r in rows[1:] if r.split(",")[2]]
    assert losses[-1] < 2e-3 < losses[0], losses
    policy = load_policy(run, "cpu")
    expert = one_demo.episode(0)["action"][:-1]
    actions = replay(policy, one_demo)
    error = np.abs(actions - expert)
    assert error.mean() < 0.04 and error.max() < 0.15, error
    # The history matters: the first observation again, without a reset, gives another action.
    first = {k: one_demo.episode(0)[k][0] for k in ("rgb", "proprio")}
    assert np.abs(policy.act(first) - actions[0]).max() > 0.05
    # After reset() the same observation gives the first step's action exactly.
    policy.reset()
    np.testing.assert_array_equal(policy.act(first), actions[0])
    assert policy.saliency(first) is None  # mode rgb uses no map


def test_execute_all_runs_the_chunk_open_loop(one_demo, tiny_multimae_64, tmp_path):
    run = train_bc(
        one_demo,
        tiny_multimae_64["rgb"],
        tiny(execution="all", chunk=3, steps=5),
        out=tmp_path / "run",
        device="cpu",
        progress=False,
    )
    policy = load_policy(run, "cpu")
    data = one_demo.episode(0)
    policy.history.append(policy.state({"rgb": data["rgb"][0], "proprio": data["proprio"][0]}))
    chunk0 = np.clip(policy.predict_chunk(), -1, 1)  # (H, A) predicted at step 0
    calls = []
    predict = policy.predict_chunk
    policy.predict_chunk = lambda: calls.append(1) or predict()
    actions = replay(policy, one_demo, steps=4)  # replay resets first
    assert len(calls) == 2  # at steps 0 and 3
    np.testing.assert_allclose(actions[:3], chunk0, atol=1e-6)


def test_episodes_side_by_side_match_one_at_a_time(one_demo, tiny_multimae_64, tmp_path):
    """evaluate_bc plays several episodes at once with one batched encoder call a step;
    each fork keeps its own history, so the episodes are those played one by one."""
    run = train_bc(
        one_demo,
        tiny_multimae_64["rgb"],
        tiny(chunk=2, history=3, steps=5),
        out=tmp_path / "run",
        device="cpu",
        progress=False,
    )
    policy = load_policy(run, "cpu")
    data = one_demo.episode(0)
    observations = [{"rgb": data["rgb"][t], "proprio": data["proprio"][t]} for t in range(3)]
    batched = policy.states(observations)
    single = torch.stack([policy.state(obs) for obs in observations])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-5)
    options = {"image_size": 64, "episode_length": 6}
    alone = evaluate_bc(policy, "fake:square", options, 5, seed=3, side_by_side=1)
    together = evaluate_bc(policy, "fake:square", options, 5, seed=3, side_by_side=3)
    returns = [[e["episode_return"] for e in r["per_episode"]] for r in (alone, together)]
    assert len(returns[1]) == 5 and len(set(np.round(returns[0], 4))) > 1  # episodes differ
    np.testing.assert_allclose(returns[1], returns[0], atol=1e-4)


def test_resume_is_exact(one_demo, tiny_multimae_64, tmp_path):
    settings = tiny(steps=12, checkpoint_every=6, log_every=3)
    encoder = tiny_multimae_64["rgb"]
    straight = train_bc(one_demo, encoder, settings, out=tmp_path / "a", device="cpu",
                        progress=False)  # fmt: skip
    half = train_bc(one_demo, encoder, tiny(steps=6, checkpoint_every=6, log_every=3),
                    out=tmp_path / "b", device="cpu", progress=False)  # fmt: skip
    resumed = resume_bc(half, steps=12, device="cpu", progress=False)
    a = load_checkpoint(straight / "checkpoints" / "latest")[1]
    b = load_checkpoint(resumed / "checkpoints" / "latest")[1]
    for name in a:
        assert torch.equal(a[name], b[name]), name
    loss = [line.split(",")[:3] for line in (straight / "metrics.csv").read_text().splitlines()]
    again = [line.split(",")[:3] for line in (resumed / "metrics.csv").read_text().splitlines()]
    assert [r[0] for r in loss] == [r[0] for r in again] == ["step", "3", "6", "9", "12"]
    assert [r[2] for r in loss] == [r[2] for r in again]
    with pytest.raises(RunError, match="cannot change"):
        resume_bc(resumed, chunk=4, device="cpu", progress=False)


def test_precision_auto_is_recorded_kept_on_resume_and_fp32_runs_unchanged(
    one_demo, tiny_multimae_64, tmp_path
):
    encoder = tiny_multimae_64["rgb"]
    run = dict(device="cpu", progress=False)
    auto = train_bc(one_demo, encoder, tiny(steps=6, checkpoint_every=6, log_every=3,
                                           precision="auto"), out=tmp_path / "auto", **run)  # fmt: skip
    recorded = json.loads((auto / "config.json").read_text())["precision"]
    assert recorded["requested"] == "auto" and set(recorded["timings_ms"]) == {"fp32", "bf16"}
    if recorded["chosen"] == "fp32":  # the trial drew from no stream of the run
        fp32 = train_bc(one_demo, encoder, tiny(steps=6, checkpoint_every=6, log_every=3),
                        out=tmp_path / "fp32", **run)  # fmt: skip
        a = load_checkpoint(auto / "checkpoints" / "latest")[1]
        b = load_checkpoint(fp32 / "checkpoints" / "latest")[1]
        assert all(torch.equal(a[name], b[name]) for name in a)
    resume_bc(auto, steps=9, **run)
    assert json.loads((auto / "config.json").read_text())["precision"] == recorded
    bf16 = train_bc(one_demo, encoder, tiny(steps=3, log_every=3, precision="bf16"),
                    out=tmp_path / "bf16", **run)  # fmt: skip
    rows = (bf16 / "metrics.csv").read_text().splitlines()
    assert len(rows) == 2 and np.isfinite(float(rows[1].split(",")[2]))
    with pytest.raises(RunError, match="precision"):
        tiny(precision="fp16").validate()
