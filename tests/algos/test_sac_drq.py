"""The drq preset (DrQ's K / M shifts, target encoder, n-step, update_every) and the bf16
path of the SAC agent: values against the cited tables, shifts, precision, exact resume."""

import json

import pytest
import torch
from sac_batches import batch_of, changed, params, read_rows, weights

from saliency_rl.algos.rad import shift_fields
from saliency_rl.algos.sac import (
    ENV_PRESETS,
    SAC_PRESETS,
    PixelObsEncoder,
    SACAgent,
    SACConfig,
    sac_config,
)
from saliency_rl.algos.sac_inputs import StepInputs
from saliency_rl.algos.sac_trainer import build_agent, resume_sac, train_sac
from saliency_rl.envs.presets import PRESETS
from saliency_rl.models.pixel_cnn import PixelCNN
from saliency_rl.runs import RunError

MODES = ("rgb", "saliency", "rgb_x_saliency", "rgbs")
# As tests/algos/test_sac.py: fake:square at 32x32, tiny networks and budgets.
TINY_RUN = dict(
    init_steps=10, batch_size=8, hidden_dim=32, feature_dim=16, conv_layers=3, eval_every=20,
    eval_episodes=2, log_every=10, checkpoint_every=20,
)  # fmt: skip
FAKE = dict(episode_length=10, image_size=32)


def agent_of(mode="rgb", **kwargs):
    torch.manual_seed(0)
    cnn = PixelCNN(mode, frames=1, image_size=32, num_layers=3)
    return SACAgent(PixelObsEncoder(cnn), 2, feature_dim=16, hidden_dim=32, **kwargs)


# ---------------------------------------------------------------------- the preset
def test_drq_preset_follows_the_paper_and_code():
    """DrQ's appendix hyper-parameter table / official config.yaml and drq.py."""
    d = SAC_PRESETS["drq"]
    assert (d.aux, d.batch_size, d.replay_size, d.init_steps) == ("drq", 512, 100_000, 1000)
    assert (d.actor_lr, d.critic_lr, d.alpha_lr) == (1e-3, 1e-3, 1e-3)
    assert d.actor_betas == d.critic_betas == d.alpha_betas == (0.9, 0.999)
    assert (d.init_temperature, d.discount) == (0.1, 0.99)
    assert (d.critic_tau, d.target_update_every, d.actor_update_every) == (0.01, 2, 2)
    assert d.target_encoder  # the code's target critic holds its own encoder
    assert (d.log_std_min, d.log_std_max) == (-10.0, 2.0)
    assert (d.conv_layers, d.conv_filters, d.feature_dim) == (4, 32, 50)
    assert (d.hidden_dim, d.hidden_layers) == (1024, 2)
    assert (d.target_augs, d.q_augs, d.shift_pad, d.shift_pad_at) == (2, 2, 4, 84)
    assert (d.nstep, d.update_every, d.precision) == (1, 1, "auto")
    assert d.augment_pad(84) == 4 and d.augment_pad(64) == 3  # pad 4 at 84 px, scaled
    assert d.method == "drq-cnn-rgb"
    # The PlaNet benchmark's frames and per-task action repeats (env preset dmc-100k).
    assert ENV_PRESETS["drq"] == {"dmc": "dmc-100k"}
    env = PRESETS["dmc-100k"]
    assert (env.options["image_size"], env.options["frame_stack"]) == (84, 3)
    repeats = {k: env.action_repeat[k] for k in ("cartpole", "finger", "walker", "ball_in_cup")}
    assert repeats == {"cartpole": 8, "finger": 2, "walker": 2, "ball_in_cup": 4}
    # 4 conv layers of 32 filters at 84 px: 35 x 35 x 32 features, as DrQ's encoder.
    inputs = StepInputs("cnn", "rgb", frames=3, frame_channels=3, image_size=84)
    agent = build_agent(d, inputs, 6, torch.device("cpu"))
    assert agent.encoder.output_dim == 32 * 35 * 35
    assert len(agent.critic.q1) == 2 * 2 + 1  # 2 hidden layers, then the output
    assert agent.target_augs == agent.q_augs == 2 and agent.augment_pad == 4
    # visarl stays the paper's: no augmentation, fp32, every new option at its plain value.
    visarl = SAC_PRESETS["visarl"]
    assert visarl == SACConfig()
    assert (visarl.precision, visarl.nstep, visarl.update_every) == ("fp32", 1, 1)
    assert (visarl.target_augs, visarl.q_augs, visarl.target_encoder) == (1, 1, False)
    assert SACConfig.from_json(d.to_json()) == d


def test_drq_settings_are_checked():
    with pytest.raises(RunError, match="average over random shifts"):
        sac_config(target_augs=2)  # visarl: aux none, nothing to average over
    with pytest.raises(RunError, match="unknown precision"):
        sac_config("drq", precision="fp16")
    with pytest.raises(RunError, match="nstep must be > 0"):
        sac_config("drq", nstep=0)
    with pytest.raises(RunError, match="need augment_pad"):
        agent_of(q_augs=2)


# ---------------------------------------------------------------------- shifts
def test_copies_shift_frame_and_saliency_together():
    """K / M copies: each copy of a sample has its own offset, the same for its frame and
    its map; the other fields are repeated."""
    g = torch.Generator().manual_seed(0)
    rgb = torch.randint(0, 256, (8, 6, 32, 32), generator=g, dtype=torch.uint8)
    obs = {"rgb": rgb, "saliency": rgb[:, ::3].clone(), "proprio": torch.arange(8.0)[:, None]}
    out = shift_fields(obs, 4, torch.Generator().manual_seed(1), copies=3)
    assert out["rgb"].shape == (24, 6, 32, 32) and out["saliency"].shape == (24, 2, 32, 32)
    assert out["rgb"].dtype == torch.uint8 and out["rgb"].is_contiguous()
    assert torch.equal(out["saliency"], out["rgb"][:, ::3])  # every copy aligned
    assert torch.equal(out["proprio"], obs["proprio"].repeat(3, 1))
    copies = out["rgb"].view(3, 8, 6, 32, 32)
    assert not torch.equal(copies[0], copies[1])  # own offsets per copy
    # Every copy is a replicate-padded translation of its own sample by <= 4 pixels.
    padded = torch.nn.functional.pad(rgb.float(), (4, 4, 4, 4), mode="replicate")
    for m in range(3):
        for i in range(8):
            found = [
                (dy, dx)
                for dy in range(9)
                for dx in range(9)
                if torch.equal(copies[m, i].float(), padded[i, :, dy : dy + 32, dx : dx + 32])
            ]
            assert found


def test_shift_matches_the_per_pixel_gather_it_replaced():
    """The row gather draws the same offsets and makes the same frames as the old gather."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (16, 9, 20, 24), generator=g, dtype=torch.uint8)
    pad = 3
    offsets = torch.randint(0, 2 * pad + 1, (2, 16, 1), generator=torch.Generator().manual_seed(5))
    offsets = offsets - pad
    rows = (torch.arange(20) + offsets[0]).clamp_(0, 19)
    cols = (torch.arange(24) + offsets[1]).clamp_(0, 23)
    expected = x[torch.arange(16)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    out = shift_fields({"rgb": x}, pad, torch.Generator().manual_seed(5))["rgb"]
    assert torch.equal(out, expected.permute(0, 3, 1, 2))


# ---------------------------------------------------------------------- the update
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("mode", MODES)
def test_drq_update_in_every_mode_and_precision(mode, precision):
    agent = agent_of(
        mode, augment_pad=4, target_augs=2, q_augs=2, target_encoder=True, precision=precision,
        actor_update_every=1, target_update_every=1, critic_tau=0.5,
    )  # fmt: skip
    batch = batch_of(saliency=mode != "rgb")
    if mode == "saliency":  # the map alone: nothing else is stored
        del batch.obs["rgb"]
        del batch.next_obs["rgb"]
    encoder, target = params(agent.encoder), params(agent.encoder_target)
    metrics = agent.update(batch)
    assert all(torch.isfinite(v) for v in metrics.values()), metrics
    assert all(v.dtype == torch.float32 for v in metrics.values())
    assert all(changed(encoder, agent.encoder))
    assert any(changed(target, agent.encoder_target))  # moved by Polyak, not gradients
    assert all(p.grad is None for p in agent.encoder_target.parameters())
    nets = (agent.encoder, agent.critic, agent.actor, agent.encoder_target)
    assert all(p.dtype == torch.float32 for net in nets for p in net.parameters())
    assert "encoder_target.cnn.convs.0.weight" in agent.state_dict()


def test_drq_with_one_shift_is_rad():
    """K = M = 1 without a target encoder is RAD's update, bit for bit."""
    a, b = agent_of(augment_pad=4), agent_of(augment_pad=4, target_augs=1, q_augs=1)
    for seed in range(3):
        ma, mb = a.update(batch_of(seed=seed)), b.update(batch_of(seed=seed))
        assert all(torch.equal(ma[k], mb[k]) for k in ma)


def test_targets_average_over_k_shifts(monkeypatch):
    """K = 2: the target is the mean of the two shifts' soft values (DrQ Eq. 3)."""
    agent = agent_of(augment_pad=4, target_augs=2)
    batch = batch_of()
    h = agent.encoder(batch.obs)
    h_next = agent.encoder({"rgb": torch.cat([batch.next_obs["rgb"]] * 2)})
    state = agent.generator.get_state()
    captured = {}
    original = torch.nn.functional.mse_loss

    def spy(q, target):
        captured["target"] = target
        return original(q, target)

    monkeypatch.setattr(torch.nn.functional, "mse_loss", spy)
    agent.update_critic(h, batch, h_next)
    monkeypatch.undo()
    agent.generator.set_state(state)
    with torch.no_grad():
        action, log_prob = agent.actor.sample(h_next, agent.generator)
        q1, q2 = agent.critic_target(h_next, action)
        v = (torch.min(q1, q2) - agent.alpha * log_prob).view(2, 8, 1)
        expected = batch.reward + batch.discount * 0.99 * v.mean(0)
    assert torch.allclose(captured["target"], expected)


@pytest.mark.parametrize("aux", ["curl", "rad"])
def test_bf16_gives_finite_losses(aux):
    agent = agent_of(augment_pad=4, curl=aux == "curl", precision="bf16", actor_update_every=1)
    for seed in range(3):
        metrics = agent.update(batch_of(seed=seed))
        assert all(torch.isfinite(v) for v in metrics.values()), metrics
    assert agent.log_alpha.dtype == torch.float32


def test_precision_trial_leaves_the_agent_untouched():
    agent = agent_of(augment_pad=4, target_augs=2, q_augs=2, target_encoder=True)
    before = {k: v.clone() for k, v in agent.state_dict().items()}
    rng = agent.generator.get_state()
    torch_rng = torch.get_rng_state()
    trial = agent.precision_trial({"rgb": ((3, 32, 32), torch.uint8)}, 4)
    for _ in range(2):
        trial().backward()
    after = agent.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(rng, agent.generator.get_state())
    assert torch.equal(torch_rng, torch.get_rng_state())
    assert all(p.grad is None for p in agent.encoder.parameters())


# ---------------------------------------------------------------------- runs
DRQ_RUN = dict(
    TINY_RUN, aux="drq", target_augs=2, q_augs=2, target_encoder=True, nstep=3, update_every=2
)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_drq_resume_is_exact_and_deterministic(tmp_path, precision):
    settings = dict(DRQ_RUN, precision=precision)

    def run(out, total, **extra):
        config = sac_config(total_steps=total, **{**settings, **extra})
        return train_sac("fake:square", config, env_options=FAKE, out=tmp_path / out,
                         progress=False, device="cpu")  # fmt: skip

    whole = run("whole", 40)
    half = run("half", 20)
    resume_sac(half, total_steps=40, progress=False, device="cpu")
    rows = read_rows(whole)
    assert rows == read_rows(half)
    trained = [r for r in rows if r["critic_loss"]]
    assert trained and int(rows[-1]["updates"]) == 15  # steps 12, 14, ..., 40
    a, b = weights(whole), weights(half)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert read_rows(run("again", 40)) == rows
    assert json.loads((whole / "config.json").read_text())["precision"]["chosen"] == precision


@pytest.mark.slow
def test_precision_auto_picks_records_and_resumes_without_timing(tmp_path, monkeypatch):
    config = sac_config(total_steps=20, precision="auto", **TINY_RUN)
    run = train_sac("fake:square", config, env_options=FAKE, out=tmp_path / "auto",
                    progress=False, device="cpu")  # fmt: skip
    recorded = json.loads((run / "config.json").read_text())["precision"]
    assert recorded["requested"] == "auto" and recorded["chosen"] in ("fp32", "bf16")
    assert set(recorded["timings_ms"]) == {"fp32", "bf16"}
    assert all(t > 0 for t in recorded["timings_ms"].values())
    faster = min(recorded["timings_ms"], key=recorded["timings_ms"].get)
    assert recorded["chosen"] == faster and "batch 8" in recorded["trial"]

    def no_timing(*args, **kwargs):
        raise AssertionError("a resumed run must not time again")

    import saliency_rl.algos.sac_trainer as trainer
    import saliency_rl.precision as precision

    monkeypatch.setattr(precision, "choose_precision", no_timing)
    monkeypatch.setattr(trainer, "choose_sac_precision", no_timing)
    resume_sac(run, total_steps=30, progress=False, device="cpu")
    again = json.loads((run / "config.json").read_text())["precision"]
    assert again == recorded


# ---------------------------------------------------------------------- the CLI
@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_train_sac_preset_drq_through_the_cli(mode, tiny_predictor_64, tmp_path, capsys):
    from saliency_rl.cli import main

    out = tmp_path / "run"
    argv = ["train", "sac", "--preset", "drq", "--env", "dmc:cartpole-swingup"]
    argv += ["--saliency-mode", mode, "--total-steps", "8", "--init-steps", "4"]
    argv += ["--batch-size", "4", "--episode-length", "4", "--eval-every", "0"]
    argv += ["--eval-episodes", "1", "--checkpoint-every", "4", "--log-every", "4"]
    argv += ["--no-progress", "--threads", "1", "--device", "cpu", "--out", str(out)]
    if mode != "rgb":  # the predictor is 64x64: the pad scales to 3
        argv += ["--predictor", str(tiny_predictor_64), "--image-size", "64"]
    assert main(argv) == 0, capsys.readouterr().err
    config = json.loads((out / "config.json").read_text())
    assert config["preset"] == "drq" and config["method"] == f"drq-cnn-{mode}"
    assert config["env_options"]["preset"] == "dmc-100k"
    assert config["config"]["batch_size"] == 4 and config["config"]["q_augs"] == 2
    assert config["precision"]["requested"] == "auto"
    assert config["precision"]["chosen"] in ("fp32", "bf16")
    final = json.loads((out / "eval.json").read_text())["final"]
    assert final["frames"] == 8 * 8 and "return_mean" in final  # cartpole repeats 8
    with (out / "metrics.csv").open() as handle:
        assert "critic_loss" in handle.readline()
