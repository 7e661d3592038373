"""A tiny demo run shared by the demo, report and browser tests (it takes a while on 2 cores)."""

import pytest

from saliency_rl.cli import main


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory):
    """A finished ``saliency-rl demo --preset tiny`` directory, made through the CLI in two
    calls: up to MultiMAE pretraining, then the rest (the second continues the first)."""
    out = tmp_path_factory.mktemp("demo") / "demo"
    args = ["demo", "--preset", "tiny", "--out", str(out), "--no-progress", "--device", "cpu"]
    assert main([*args, "--until", "pretrain"]) == 0
    assert not (out / "rgb").exists()
    assert main(args) == 0
    return out
