"""MultiMAE's first checkpoint format (tests/fixtures/multimae_v1, written by the code of
b217281) still loads and resumes: saliency_rl.checkpoint reads it as today's format."""

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from saliency_rl.checkpoint import load_training_state, read_config
from saliency_rl.models.frozen_encoder import FrozenMultiMAEEncoder
from saliency_rl.models.multimae import MultiMAE, read_checkpoint_config
from saliency_rl.pretrain.multimae_pretrain import pretrain_multimae

FIXTURE = Path(__file__).parent.parent / "fixtures" / "multimae_v1"
SMALL = dict(dim=8, decoder_dim=8, mlp_ratio=1.0, patch_size=8)
# The settings the fixture's run was made with (its README).
SETTINGS = dict(
    modalities=("rgb", "saliency"), steps=4, batch_size=4, lr=1e-3, warmup=1, seed=0,
    device="cpu", progress=False, model_size="tiny", model_overrides=SMALL,
    checkpoint_every=2, preview_frames=1,
)  # fmt: skip


@pytest.fixture
def one_thread():
    """The fixture was written on one CPU thread; matmuls on more may round differently."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_v1_config_reads_as_the_checkpoint_format():
    config = read_config(FIXTURE / "checkpoint")
    assert config["model"] == "MultiMAE" and config["note"] == "multimae_v1 fixture"
    assert "format" not in config and config["kwargs"]["dim"] == 8
    assert read_checkpoint_config(FIXTURE / "checkpoint") == config
    assert load_training_state(FIXTURE / "checkpoint") is None


def test_v1_checkpoint_reproduces_its_outputs(one_thread):
    stored = load_file(FIXTURE / "checkpoint_outputs.safetensors")
    model = MultiMAE.from_pretrained(FIXTURE / "checkpoint").eval()
    inputs = {m: stored[f"input.{m}"] for m in ("rgb", "saliency")}
    masks = (stored["mask"].bool(), stored["ids_keep"], stored["ids_restore"])
    with torch.no_grad():
        output = model(inputs, masks)
        features = model.features(inputs)
    # The weights are the same bytes; the tolerance only allows for other kernels.
    torch.testing.assert_close(features, stored["features"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(output.loss.reshape(1), stored["loss"], rtol=1e-5, atol=1e-6)
    for m in ("rgb", "saliency"):
        torch.testing.assert_close(output.preds[m], stored[f"pred.{m}"], rtol=1e-5, atol=1e-6)
    encoder = FrozenMultiMAEEncoder.load(FIXTURE / "checkpoint", device="cpu")
    assert encoder.mode == "rgb+saliency" and encoder.feature_dim == 8


def test_v1_run_resumes_to_the_straight_run(tmp_path, one_thread):
    # Copies: the fixture's files are never written to.
    dataset = shutil.copytree(FIXTURE / "dataset", tmp_path / "dataset")
    run = shutil.copytree(FIXTURE / "pretrain_run", tmp_path / "run")
    state = load_training_state(run / "checkpoints" / "step_000002")
    assert state["step"] == 2 and set(state["optimizer"]) == {"state", "param_groups"}

    summary = pretrain_multimae(dataset, run, resume=True, **SETTINGS)
    assert summary.resumed_from == 2 and summary.step == 4
    straight = load_file(FIXTURE / "straight_run_step4.safetensors")
    weights = MultiMAE.from_pretrained(summary.checkpoint).state_dict()
    assert {f"weights.{k}" for k in weights} == set(straight) - {"loss"}
    # Bit for bit on the machine kind that wrote the fixture (an Intel Xeon). Another CPU's
    # kernels round differently, and Adam turns a rounding-sized gradient of a near-zero
    # weight into a step of up to the learning rate (an AMD EPYC: 2.4e-4 at most): there,
    # within one learning rate. Resuming bit for bit on one machine is tests/pretrain's job;
    # that the v1 optimizer state was used, not restarted, shows in its step count.
    exact = all(torch.equal(v, straight[f"weights.{k}"]) for k, v in weights.items())
    for name, value in weights.items():
        torch.testing.assert_close(
            value, straight[f"weights.{name}"], rtol=0, atol=0 if exact else SETTINGS["lr"]
        )
    resumed = load_training_state(summary.checkpoint)["optimizer"]["state"]
    assert {int(s["step"]) for s in resumed.values()} == {4}
    with (run / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["step"] for r in rows] == ["1", "2", "3", "4"]
    losses = [float(r["loss"]) for r in rows]
    assert losses == pytest.approx(straight["loss"].tolist(), rel=0 if exact else 1e-3)
    # The new checkpoint is in today's format, beside the old one it resumed from.
    config = json.loads((summary.checkpoint / "config.json").read_text())
    assert config["model"] == "MultiMAE" and config["step"] == 4 and "format" not in config
    assert (run / "tb").is_dir()
