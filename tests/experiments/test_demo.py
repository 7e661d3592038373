"""``saliency-rl demo`` end to end at a tiny budget: every stage runs for real, the report
has its table, curves and images, and a second run skips what is done."""

import json
import threading
import time
import urllib.request

import pytest

from saliency_rl.cli import main
from saliency_rl.experiments.demo import STAGES, Demo, demo_config


@pytest.mark.slow
def test_demo_writes_a_report_with_table_plots_and_images(tiny_demo):
    report = tiny_demo / "report"
    markdown = (report / "report.md").read_text()
    page = (report / "index.html").read_text()
    # The results table: the task as a row, the method as a column, clean and distractor.
    assert "| task | sac-multimae-rgb+saliency |" in markdown
    assert "| dmc:cartpole-swingup |" in markdown
    assert "under distractor color_hard" in markdown and "no distractor" in markdown
    assert page.count('<table class="results"') == 6  # final, clean, color_hard; each + IQM
    # A learning curve and the figures: annotations, predictor, reconstructions, policy maps.
    images = {p.name: p.stat().st_size for p in (report / "images").iterdir()}
    assert images["curve_dmc-cartpole-swingup.png"] > 1000
    for name in (
        "saliency_annotations.png",
        "saliency_predictor_preview.png",
        "multimae_reconstructions.png",
        "policy_saliency_clean.png",
        "policy_saliency_color_hard.png",
    ):
        assert images[f"sac__{name}"] > 100, name
        assert f"images/sac__{name}" in markdown
    assert page.count("data:image/png;base64,") == 6  # self-contained: no file links
    assert "http://" not in page and "https://" not in page  # no CDN
    state = json.loads((tiny_demo / "demo.json").read_text())
    assert set(state["stages"]) == set(STAGES)
    assert json.loads((tiny_demo / "sac" / "eval_color_hard.json").read_text())["episodes"] == 1


@pytest.mark.slow
def test_a_finished_demo_is_skipped_and_other_settings_are_refused(tiny_demo, capsys):
    args = ["demo", "--preset", "tiny", "--out", str(tiny_demo), "--no-progress"]
    before = (tiny_demo / "sac" / "eval.json").stat().st_mtime_ns
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("done already, skipped") == len(STAGES) - 1  # all but the report
    assert f"report: {tiny_demo / 'report' / 'index.html'}" in out
    assert (tiny_demo / "sac" / "eval.json").stat().st_mtime_ns == before
    assert main([*args, "--seed", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "other settings (seed)" in err


def test_scale_multiplies_every_budget():
    base, doubled = demo_config("cpu"), demo_config("cpu", scale=2)
    assert doubled.sac_steps == 2 * base.sac_steps
    assert doubled.pretrain_steps == 2 * base.pretrain_steps
    assert doubled.predictor_steps == 2 * base.predictor_steps
    assert doubled.collect_episodes == 2 * base.collect_episodes
    assert doubled.annotate_frames == base.annotate_frames  # a person's work is not scaled
    assert demo_config("paper").pretrain_steps == 10_000
    assert main(["demo", "--scale", "0", "--out", "/nonexistent/x"]) == 2


@pytest.mark.slow
def test_browser_annotation_waits_for_the_clicks(tmp_path):
    """--annotate browser: the demo serves the page and goes on once every frame has clicks."""
    config = demo_config("tiny", annotate_frames=3)
    lines = []
    demo = Demo(tmp_path, config, annotate="browser", port=0, progress=False, echo=lines.append)
    worker = threading.Thread(target=demo.run, kwargs={"until": "annotate"}, daemon=True)
    worker.start()
    deadline = time.time() + 120
    while not any("open http" in line for line in lines):
        assert time.time() < deadline and worker.is_alive(), lines
        time.sleep(0.2)
    url = next(line for line in lines if "open http" in line).split("open ")[1].split()[0]
    url = url.rstrip("/")
    assert worker.is_alive()  # waiting for a person
    for position in range(3):
        request = urllib.request.Request(
            f"{url}/api/frame/{position}/clicks",
            data=json.dumps({"clicks": [{"x": 20.0 + position, "y": 30.0}]}).encode(),
            headers={"Content-Type": "application/json"},
            method="PUT",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert any("3 frames annotated in the browser" in line for line in lines)
    assert json.loads((tmp_path / "demo.json").read_text())["annotate"] == "browser"
