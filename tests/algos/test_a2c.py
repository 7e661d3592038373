"""A2C and its attention modes as a library: network shapes, which parameters each mode
trains, n-step returns, the frame pairs, the vector-env backends and the config."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from saliency_rl.algos.a2c import A2CAgent, ActorCritic, Rollout, a2c_config
from saliency_rl.algos.a2c_attention import RecentFrames
from saliency_rl.envs.atari_vector import make_atari_vector
from saliency_rl.errors import EnvSpecError
from saliency_rl.models.attention import SelfSupervisedAttention
from saliency_rl.runs import RunError

T, N, A = 3, 2, 5


def random_rollout(seed: int = 0) -> Rollout:
    rng = np.random.default_rng(seed)
    obs = rng.integers(0, 256, (T + 1, N, 4, 84, 84), np.uint8)
    dones = np.zeros((T, N), np.float32)
    dones[1, 0] = 1.0
    return Rollout(
        obs=torch.from_numpy(obs),
        actions=torch.from_numpy(rng.integers(0, A, (T, N))),
        rewards=torch.from_numpy(rng.choice([-1.0, 0.0, 1.0], (T, N)).astype(np.float32)),
        dones=torch.from_numpy(dones),
    )


def pairs(n: int = N, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    return tuple(torch.from_numpy(rng.integers(0, 256, (n, 1, 84, 84), np.uint8)) for _ in range(2))


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict, module: torch.nn.Module, prefix: str) -> bool:
    after = module.state_dict()
    return any(not torch.equal(v, after[k]) for k, v in before.items() if k.startswith(prefix))


@pytest.mark.parametrize("mode", ["none", "joint", "top-down", "frozen"])
def test_network_shapes(mode):
    torch.manual_seed(0)
    net = ActorCritic(A, attention=mode)
    with torch.no_grad():
        logits, value, mask = net(random_rollout().obs[0])
    assert logits.shape == (N, A) and value.shape == (N,)
    if mode == "none":
        assert mask is None and net.attention is None
    else:
        assert mask.shape == (N, 1, 7, 7)  # multiplies the (N, 32, 7, 7) features
        assert 0 <= float(mask.min()) and float(mask.max()) <= 1


def test_third_conv_has_32_channels():
    net = ActorCritic(A, attention="none")
    assert net.cnn.convs[4].out_channels == 32  # Wu et al.'s CNN, not the Nature DQN's 64
    assert net.cnn.fc[1].in_features == 32 * 7 * 7


def test_n_step_returns_stop_at_episode_ends():
    torch.manual_seed(0)
    agent = A2CAgent(A, gamma=0.5)
    rollout = random_rollout()
    with torch.no_grad():
        bootstrap = agent.net(rollout.obs[-1])[1]
    returns = agent.n_step_returns(rollout)
    r, d = rollout.rewards, rollout.dones
    expected = torch.empty(T, N)
    running = bootstrap
    for t in reversed(range(T)):
        running = r[t] + 0.5 * (1 - d[t]) * running
        expected[t] = running
    torch.testing.assert_close(returns, expected)
    assert returns[1, 0] == r[1, 0]  # the episode ended there: no bootstrap


def test_update_with_the_acting_graph_equals_recomputing():
    rollout = random_rollout()
    agents = []
    for reuse in (False, True):
        torch.manual_seed(0)
        agent = A2CAgent(A, attention="joint")
        batch = rollout
        if reuse:
            outputs = [agent.explore(rollout.obs[t]) for t in range(T)]
            batch = dataclasses.replace(
                rollout,
                logits=torch.stack([o[1] for o in outputs]),
                values=torch.stack([o[2] for o in outputs]),
            )
        metrics = agent.update(batch, pairs())
        agents.append((agent, metrics))
    (a, ma), (b, mb) = agents
    for key in ("policy_loss", "value_loss", "entropy", "attention_loss"):
        assert ma[key] == pytest.approx(mb[key], rel=1e-5)
    for name, value in a.net.state_dict().items():
        torch.testing.assert_close(value, b.net.state_dict()[name], rtol=1e-5, atol=1e-6)


def test_each_mode_trains_what_it_should():
    rollout, frame_pairs = random_rollout(), pairs()
    # joint: RL and reconstruction both; the decoder learns
    torch.manual_seed(0)
    joint = A2CAgent(A, attention="joint")
    before = snapshot(joint.net)
    metrics = joint.update(rollout, frame_pairs)
    assert {"attention_loss", "reconstruction_loss", "mask_mean", "policy_loss"} <= set(metrics)
    for part in ("cnn.", "attention.mask_trunk.", "attention.encoder.", "attention.decoder."):
        assert changed(before, joint.net, part), part
    # top-down: the mask learns from the RL loss alone; encoder and decoder are unused
    top = A2CAgent(A, attention="top-down")
    before = snapshot(top.net)
    metrics = top.update(rollout, frame_pairs)
    assert "attention_loss" not in metrics
    assert changed(before, top.net, "attention.mask_head.")
    assert not changed(before, top.net, "attention.decoder.")
    assert not changed(before, top.net, "attention.encoder.")
    # frozen: the pretrained module stays as it was
    pretrained = SelfSupervisedAttention()
    frozen = A2CAgent(A, attention="frozen", pretrained_attention=pretrained)
    before = snapshot(frozen.net)
    frozen.update(rollout, frame_pairs)
    assert changed(before, frozen.net, "cnn.")
    assert not changed(before, frozen.net, "attention.")
    for name, value in pretrained.state_dict().items():
        torch.testing.assert_close(frozen.net.attention.state_dict()[name], value)


def test_the_official_separate_attention_step_waits_for_its_warm_up():
    rollout, frame_pairs = random_rollout(), pairs()
    torch.manual_seed(0)
    agent = A2CAgent(A, attention="joint", attention_update="separate", attention_warmup=1)
    before = snapshot(agent.net)
    first = agent.update(rollout, frame_pairs)  # update 1: RL only, the warm-up
    assert "attention_loss" not in first
    assert changed(before, agent.net, "attention.mask_trunk.")  # the RL loss reaches the mask
    assert not changed(before, agent.net, "attention.decoder.")
    second = agent.update(rollout, frame_pairs)  # update 2: and the attention's Adam step
    assert {"attention_loss", "reconstruction_loss", "mask_mean", "policy_loss"} <= set(second)
    assert changed(before, agent.net, "attention.decoder.")
    state = agent.optimizer_state()
    assert state["updates"] == 2 and state["attention"]["state"]  # Adam's moments, for resume
    twin = A2CAgent(A, attention="joint", attention_update="separate", attention_warmup=1)
    twin.load_optimizer_state(state)
    assert twin.updates == 2


def test_pretrained_module_is_required_exactly_by_the_fixed_modes():
    with pytest.raises(RunError, match="needs a pretrained module"):
        A2CAgent(A, attention="universal")
    with pytest.raises(RunError, match="trains its own module"):
        A2CAgent(A, attention="joint", pretrained_attention=SelfSupervisedAttention())


def test_recent_frames_pairs_come_from_one_game_and_are_distinct():
    frames = RecentFrames(6, 3, torch.device("cpu"))
    rng = np.random.default_rng(0)
    assert frames.sample(rng) is None  # nothing yet
    step = 0

    def add(new_game):
        nonlocal step
        # frame value = step * 3 + env, so a frame says when and where it was taken
        values = torch.tensor([step * 3 + e for e in range(3)], dtype=torch.uint8)
        frames.add(values[:, None, None].expand(3, 84, 84).clone(), np.array(new_game))
        step += 1

    add([True, True, True])
    assert frames.sample(rng) is None  # one frame per game: no pair
    for t in range(9):
        add([False, t == 6, False])  # env 1 starts a new game at step 7
    for _ in range(50):
        source, target = frames.sample(rng)
        assert source.shape == target.shape == (3, 1, 84, 84)
        s = source[:, 0, 0, 0].long().numpy()
        t = target[:, 0, 0, 0].long().numpy()
        assert (s % 3 == np.arange(3)).all() and (t % 3 == np.arange(3)).all()  # same env
        gaps = np.abs(s // 3 - t // 3)
        assert ((1 <= gaps) & (gaps <= 5)).all()  # distinct, within the buffer of 6
        assert (s[1] // 3 >= 7) and (t[1] // 3 >= 7)  # env 1: only its new game


@pytest.mark.parametrize("backend", ["native", "our"])
def test_vector_backends_report_life_loss_and_game_over(backend):
    env = make_atari_vector("atari:MsPacman", 2, backend=backend)
    try:
        obs = env.reset(0)
        assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
        rng = np.random.default_rng(0)
        life_lost = False
        for _ in range(400):
            step = env.step(rng.integers(0, env.num_actions, 2))
            assert step.obs.shape == (2, 4, 84, 84)
            np.testing.assert_array_equal(step.reward, np.sign(step.raw_reward))
            assert not (step.game_over & ~step.done).any()
            if (step.done & ~step.game_over).any():
                life_lost = True  # episodic life: the game goes on
                break
        assert life_lost
    finally:
        env.close()


def test_our_vector_state_restores_exactly():
    env = make_atari_vector("atari:MsPacman", 2, backend="our")
    env.reset(0)
    rng = np.random.default_rng(1)
    for _ in range(30):
        env.step(rng.integers(0, env.num_actions, 2))
    state = env.get_state()
    actions = rng.integers(0, env.num_actions, (40, 2))
    first = [env.step(a).obs for a in actions]
    other = make_atari_vector("atari:MsPacman", 2, backend="our")
    other.reset(99)
    other.set_state(state)
    second = [other.step(a).obs for a in actions]
    for x, y in zip(first, second, strict=True):
        np.testing.assert_array_equal(x, y)
    env.close()
    other.close()


def test_native_backend_is_deterministic_and_has_no_snapshot():
    def play():
        env = make_atari_vector("atari:Pong", 2, backend="native")
        env.reset(3)
        rng = np.random.default_rng(0)
        out = [env.step(rng.integers(0, env.num_actions, 2)).obs.sum() for _ in range(30)]
        assert env.get_state() is None
        env.close()
        return out

    assert play() == play()


def test_native_groups_play_the_same_games():
    envs = [make_atari_vector("atari:MsPacman", 3, groups=g) for g in (1, 2)]
    assert [len(e.groups) for e in envs] == [1, 2]
    starts = [e.reset(5) for e in envs]
    np.testing.assert_array_equal(*starts)
    rng = np.random.default_rng(0)
    for _ in range(40):
        actions = rng.integers(0, envs[0].num_actions, 3)
        whole = envs[0].step(actions)
        grouped = envs[1]
        for index, group in enumerate(grouped.groups):  # send all, then receive
            grouped.send(index, actions[group])
        parts = [grouped.recv(index) for index in range(len(grouped.groups))]
        np.testing.assert_array_equal(whole.obs, np.concatenate([p.obs for p in parts]))
        np.testing.assert_array_equal(
            whole.raw_reward, np.concatenate([p.raw_reward for p in parts])
        )
    for env in envs:
        env.close()


def test_grouped_rollouts_train(tmp_path):
    from saliency_rl.algos.a2c_trainer import train_a2c

    config = a2c_config(num_envs=3, total_steps=30, vector_groups=2, eval_episodes=0)
    run = train_a2c("atari:Pong", config, out=tmp_path / "run", progress=False)
    assert (run / "checkpoints" / "latest" / "model.safetensors").is_file()


def test_config_presets_and_validation():
    config = a2c_config()
    assert (config.num_envs, config.num_steps, config.learning_rate) == (16, 5, 7e-4)
    assert (config.rmsprop_eps, config.rmsprop_alpha, config.gamma) == (1e-5, 0.99, 0.99)
    assert (config.entropy_coef, config.value_coef, config.max_grad_norm) == (0.01, 0.5, 0.5)
    assert (config.attention_threshold, config.attention_sparsity) == (0.01, 1e-3)
    assert a2c_config(num_envs=2, seed=None).num_envs == 2
    with pytest.raises(RunError, match="num_envs must be > 0"):
        a2c_config(num_envs=0)
    with pytest.raises(RunError, match="unknown A2C preset"):
        a2c_config("nature")
    with pytest.raises(RunError, match="unknown A2C settings"):
        a2c_config(lr=1e-3)
    with pytest.raises(RunError, match="unknown attention .bottom-up.; valid: none, joint"):
        a2c_config(attention="bottom-up")
    with pytest.raises(EnvSpecError, match="not an Atari game"):
        make_atari_vector("dmc:cartpole-swingup", 2)
