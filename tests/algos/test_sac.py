"""SAC agent, RAD and CURL deltas, step inputs, exact resume and determinism (fake:square)."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from sac_batches import batch_of, changed, params, read_rows, weights

from saliency_rl.algos.curl import BilinearInfoNCE
from saliency_rl.algos.rad import random_shift, shift_fields
from saliency_rl.algos.sac import (
    SAC_PRESETS,
    PixelObsEncoder,
    SACAgent,
    SACConfig,
    VectorObsEncoder,
    sac_config,
)
from saliency_rl.algos.sac_inputs import StepInputs
from saliency_rl.algos.sac_trainer import load_policy, resume_sac, train_sac
from saliency_rl.data.replay import ReplayBuffer
from saliency_rl.models.pixel_cnn import PixelCNN
from saliency_rl.runs import RunError
from saliency_rl.saliency.predictor import SaliencyPredictor

TINY = dict(init_steps=10, batch_size=8, hidden_dim=32, feature_dim=16, conv_layers=3)
TINY_RUN = dict(TINY, eval_every=20, eval_episodes=2, log_every=10, checkpoint_every=20)
FAKE = dict(episode_length=10, image_size=32)


def pixel_agent(mode="rgb", **kwargs):
    torch.manual_seed(0)
    cnn = PixelCNN(mode, frames=1, image_size=32, num_layers=3)
    return SACAgent(PixelObsEncoder(cnn), 2, feature_dim=16, hidden_dim=32, **kwargs)


def test_update_trains_encoder_by_critic_only_and_returns_metrics():
    agent = pixel_agent(actor_update_every=1, target_update_every=1)
    encoder, target = params(agent.encoder), params(agent.critic_target)
    metrics = agent.update(batch_of())
    assert set(metrics) == {
        "critic_loss", "q_mean", "actor_loss", "alpha_loss", "alpha", "entropy"
    }  # fmt: skip
    assert all(isinstance(v, torch.Tensor) and v.ndim == 0 for v in metrics.values())
    assert all(changed(encoder, agent.encoder))  # trained, through the critic loss
    assert any(changed(target, agent.critic_target))  # Polyak step
    # The actor's loss never reaches the encoder: an actor update alone leaves it unchanged.
    h = agent.encoder(batch_of().obs).detach()
    encoder = params(agent.encoder)
    agent.critic_opt.zero_grad(set_to_none=True)
    agent.update_actor(h)
    assert not any(changed(encoder, agent.encoder))
    assert all(p.grad is None for p in agent.encoder.parameters())
    assert all(p.grad is None for p in agent.critic.parameters())


def test_target_moves_every_second_update_by_tau():
    agent = pixel_agent(critic_tau=0.05, target_update_every=2)
    agent.update(batch_of())  # update 0 moves the target
    target = params(agent.critic_target)
    online = params(agent.critic)
    agent.update(batch_of(seed=1))  # update 1 does not
    assert not any(changed(target, agent.critic_target))
    agent.update(batch_of(seed=2))  # update 2 does: (1 - tau) target + tau online
    critic = params(agent.critic)
    for old, new, now in zip(target, agent.critic_target.parameters(), critic, strict=True):
        assert torch.allclose(new, 0.95 * old + 0.05 * now, atol=1e-6)
    del online


def test_actions_are_squashed_and_sampled_reproducibly():
    agent = pixel_agent()
    obs = batch_of().obs
    mean = agent.act(obs, deterministic=True)
    assert mean.shape == (8, 2) and (mean.abs() < 1).all()
    a = agent.act(obs, False, torch.Generator().manual_seed(5))
    b = agent.act(obs, False, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and not torch.equal(a, mean)
    # log-probability of the tanh-Gaussian matches torch.distributions'
    h = agent.encoder(obs)
    torch.manual_seed(0)
    action, log_prob = agent.actor.sample(h, torch.Generator().manual_seed(1))
    mu, log_std = agent.actor(h)
    dist = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mu, log_std.exp()),
        [torch.distributions.TanhTransform(cache_size=1)],
    )
    assert torch.allclose(dist.log_prob(action).sum(-1, keepdim=True), log_prob, atol=1e-3)


def test_rad_shifts_frames_and_maps_together():
    g = torch.Generator().manual_seed(0)
    rgb = torch.randint(0, 256, (16, 3, 32, 32), generator=g, dtype=torch.uint8)
    obs = {"rgb": rgb, "saliency": rgb[:, :1].clone()}
    shifted = shift_fields(obs, 4, torch.Generator().manual_seed(1))
    assert shifted["rgb"].dtype == torch.uint8 and shifted["rgb"].shape == rgb.shape
    assert torch.equal(shifted["saliency"], shifted["rgb"][:, :1])  # aligned
    assert not torch.equal(shifted["rgb"], rgb)
    assert torch.equal(random_shift(rgb, 0), rgb)
    # A shift is a translation with the border repeated: the centre moves by <= 4 pixels.
    one = random_shift(rgb[:1], 4, torch.Generator().manual_seed(2))
    matches = [
        (dy, dx)
        for dy in range(-4, 5)
        for dx in range(-4, 5)
        if torch.equal(one[0, :, 8:24, 8:24], rgb[0, :, 8 + dy : 24 + dy, 8 + dx : 24 + dx])
    ]
    assert len(matches) == 1


def test_curl_loss_and_key_encoder():
    agent = pixel_agent(augment_pad=4, curl=True, target_update_every=1)
    key = params(agent.key_encoder)
    w = agent.curl.W.detach().clone()
    metrics = agent.update(batch_of())
    assert metrics["curl_loss"] > 0 and torch.isfinite(metrics["curl_loss"])
    assert not torch.equal(w, agent.curl.W)  # W trained with the critic
    assert any(changed(key, agent.key_encoder))  # momentum update, not gradients
    assert all(p.grad is None for p in agent.key_encoder.parameters())
    # InfoNCE is low when each query matches its own key best.
    head = BilinearInfoNCE(4)
    with torch.no_grad():
        head.W.copy_(torch.eye(4) * 10)
    eye = torch.eye(4)
    assert head(eye, eye) < 0.01 < head(eye, eye.roll(1, 0))


def test_aux_needs_the_pixel_cnn():
    with pytest.raises(RunError, match="needs --encoder cnn"):
        sac_config(encoder="multimae", saliency_mode="rgb", aux="rad")
    with pytest.raises(RunError, match="not one of the cnn encoder's"):
        sac_config(saliency_mode="rgb+saliency")
    with pytest.raises(RunError, match="needs augment_pad"):
        SACAgent(VectorObsEncoder(4), 1, curl=True)


def test_presets_follow_the_papers():
    visarl, rad = SAC_PRESETS["visarl"], SAC_PRESETS["rad-curl-100k"]
    assert (visarl.discount, visarl.replay_size, visarl.batch_size) == (0.99, 1_000_000, 128)
    assert (visarl.actor_lr, visarl.actor_betas) == (1e-4, (0.9, 0.999))
    assert (visarl.alpha_lr, visarl.alpha_betas) == (3e-4, (0.5, 0.999))
    assert (visarl.critic_tau, visarl.target_update_every) == (0.05, 2)
    assert (visarl.feature_dim, visarl.hidden_dim, visarl.hidden_layers) == (100, 1024, 3)
    assert (rad.actor_lr, rad.critic_lr, rad.critic_tau, rad.replay_size) == (
        1e-3, 1e-3, 0.01, 100_000
    )  # fmt: skip
    assert SACConfig.from_json(visarl.to_json()) == visarl


def test_saliency_is_computed_once_per_env_step(tiny_predictor_64):
    """Maps are predicted when a step is taken, for its newest frame only; the stored maps
    are what updates see (sampling never calls the predictor)."""
    predictor = SaliencyPredictor.load(tiny_predictor_64, device="cpu")
    calls = []
    original = predictor.predict_torch

    def counting(frames):
        calls.append(len(frames))
        return original(frames)

    predictor.predict_torch = counting
    inputs = StepInputs(
        "cnn", "rgbs", frames=3, frame_channels=3, image_size=64, predictor=predictor
    )
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (3, 64, 64), dtype=np.uint8) for _ in range(4)]
    first = inputs.first({"rgb": np.concatenate([frames[0]] * 3)})
    assert calls == [3] and first["saliency"].shape == (3, 64, 64)
    stored = inputs.next({"rgb": np.concatenate([frames[0], frames[0], frames[1]])})
    assert calls == [3, 1]  # only the newest frame
    expected = (original(torch.from_numpy(frames[1])[None]) * 255).round().to(torch.uint8)
    assert np.array_equal(stored["saliency"][2], expected[0].numpy())
    assert np.array_equal(stored["saliency"][:2], first["saliency"][1:])
    buffer = ReplayBuffer(10, inputs.fields, action_dim=1)
    buffer.start(first)
    buffer.add([0.0], 0.0, stored, False)
    buffer.sample(16)
    assert calls == [3, 1]


def test_a_predictor_of_another_size_sees_its_own_size_and_maps_come_back_at_the_frame_size(
    tiny_predictor_64,
):
    """Frames are clicked at 64 px and DrQ learns at 84: the predictor sees each frame
    resized to 64, and its map is resized back to 84."""
    predictor = SaliencyPredictor.load(tiny_predictor_64, device="cpu")
    seen = []
    original = predictor.predict_torch

    def recording(frames):
        seen.append(tuple(frames.shape))
        return original(frames)

    predictor.predict_torch = recording
    inputs = StepInputs(
        "cnn", "rgb_x_saliency", frames=3, frame_channels=3, image_size=84, predictor=predictor
    )
    frame = np.random.default_rng(0).integers(0, 256, (3, 84, 84), dtype=np.uint8)
    stored = inputs.first({"rgb": np.concatenate([frame] * 3)})
    assert seen == [(3, 3, 64, 64)]
    assert stored["saliency"].shape == (3, 84, 84) and stored["saliency"].dtype == np.uint8
    small = torch.nn.functional.interpolate(
        torch.from_numpy(frame)[None].float(), size=(64, 64), mode="bilinear", antialias=True
    )
    expected = torch.nn.functional.interpolate(
        original(small.round().to(torch.uint8))[:, None], size=(84, 84), mode="bilinear"
    )
    expected = (expected[0, 0] * 255).round().to(torch.uint8).numpy()
    assert np.abs(stored["saliency"][0].astype(int) - expected.astype(int)).max() <= 1


@pytest.mark.slow
@pytest.mark.parametrize("aux", ["none", "curl"])
def test_resume_is_exact_and_runs_are_deterministic(tmp_path, aux):
    settings = dict(TINY_RUN, aux=aux)
    whole = train_sac(
        "fake:square", sac_config(total_steps=40, **settings), env_options=FAKE,
        out=tmp_path / "whole", progress=False, device="cpu",
    )  # fmt: skip
    half = train_sac(
        "fake:square", sac_config(total_steps=20, **settings), env_options=FAKE,
        out=tmp_path / "half", progress=False, device="cpu",
    )  # fmt: skip
    resume_sac(half, total_steps=40, progress=False, device="cpu")
    rows = read_rows(whole)
    assert rows == read_rows(half)
    assert [r["step"] for r in rows if r["eval_return_mean"]] == ["20", "40"]
    a, b = weights(whole), weights(half)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    if aux == "none":  # same seed, same run; another seed, another run
        again = train_sac(
            "fake:square", sac_config(total_steps=40, **settings), env_options=FAKE,
            out=tmp_path / "again", progress=False, device="cpu",
        )  # fmt: skip
        assert read_rows(again) == rows
        other = train_sac(
            "fake:square", sac_config(total_steps=40, seed=1, **settings), env_options=FAKE,
            out=tmp_path / "other", progress=False, device="cpu",
        )  # fmt: skip
        assert read_rows(other) != rows


def test_resume_refuses_changed_settings(tmp_path):
    run = train_sac(
        "fake:square", sac_config(total_steps=10, **TINY_RUN), env_options=FAKE,
        out=tmp_path / "run", progress=False, device="cpu",
    )  # fmt: skip
    with pytest.raises(RunError, match="batch_size cannot change"):
        resume_sac(run, batch_size=16, progress=False, device="cpu")
    with pytest.raises(RunError, match="pass --resume"):
        train_sac("fake:square", sac_config(**TINY_RUN), env_options=FAKE, out=run)


def test_policy_interface(tmp_path):
    run = train_sac(
        "fake:square", sac_config(total_steps=10, **TINY_RUN), env_options=FAKE,
        out=tmp_path / "run", progress=False, device="cpu",
    )  # fmt: skip
    policy = load_policy(run)
    from saliency_rl.envs import make_env

    obs, _ = make_env("fake:square", **FAKE).reset(seed=0)
    policy.reset()
    action = policy.act(obs)
    assert action.shape == (2,) and action.dtype == np.float32 and np.all(np.abs(action) <= 1)
    assert np.array_equal(action, policy.act(obs, deterministic=True))
    assert policy.saliency(obs) is None  # mode rgb uses no map


@pytest.mark.slow
def test_a_killed_run_resumes_exactly(tmp_path):
    """SIGKILL a training process after its first checkpoint, resume, compare to a whole run."""
    args = ["train", "sac", "--env", "fake:square", "--total-steps", "120", "--init-steps", "10"]
    args += ["--batch-size", "8", "--hidden-dim", "32", "--feature-dim", "16"]
    args += ["--conv-layers", "3", "--episode-length", "10", "--image-size", "32"]
    args += ["--eval-every", "0", "--eval-episodes", "1", "--log-every", "10"]
    args += ["--checkpoint-every", "20", "--no-progress", "--threads", "1", "--device", "cpu"]
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    command = [sys.executable, "-m", "saliency_rl.cli", *args]
    killed = tmp_path / "killed"
    process = subprocess.Popen([*command, "--out", str(killed)], env=env)
    checkpoint = killed / "checkpoints" / "latest" / "config.json"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "eval.json").exists()  # it did not finish
    from saliency_rl.cli import main

    assert main([*args, "--out", str(killed), "--resume"]) == 0
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    assert read_rows(killed) == read_rows(tmp_path / "whole")
    a, b = weights(killed), weights(tmp_path / "whole")
    assert all(torch.equal(a[k], b[k]) for k in a)
