"""``saliency-rl demo`` end to end at a tiny budget: every stage runs for real, both arms
train and are evaluated clean and distracted, the verdict is the arms' own numbers, the
report has it, the curves and the clips, and a second run skips what is done."""

import json
import threading
import time
import urllib.request

import pytest

from saliency_rl.cli import main
from saliency_rl.experiments.demo import STAGES, VERDICT_FILE, Demo, demo_config

ARMS = ("rgb", "rgb_x_saliency")


@pytest.mark.slow
def test_the_verdict_is_the_two_arms_own_evaluations(tiny_demo):
    verdict = json.loads((tiny_demo / VERDICT_FILE).read_text())
    assert verdict["metric"] == "success rate" and verdict["distractor"] == "video_easy"
    for key, mode in (("without", ARMS[0]), ("with_saliency", ARMS[1])):
        run = tiny_demo / mode
        clean = json.loads((run / "eval_clean.json").read_text())
        distracted = json.loads((run / "eval_video_easy.json").read_text())
        assert clean["distractor"] == "clean" and distracted["distractor"] == "video_easy"
        assert clean["episodes"] == distracted["episodes"] == 2
        arm = verdict[key]
        assert arm["name"] == mode
        assert arm["clean"] == clean["success_rate"]
        assert arm["distracted"] == distracted["success_rate"]
        assert arm["clean_return"] == clean["return_mean"]
        assert arm["distracted_return"] == distracted["return_mean"]
        # Both arms were trained on the same data with the same budget.
        config = json.loads((run / "config.json").read_text())
        assert config["dataset"] == str(tiny_demo / "dataset")
        assert config["encoder_mode"] == mode and config["config"]["steps"] == 4
    low, high = verdict["distracted_difference"][1:]
    estimate = verdict["distracted_difference"][0]
    assert estimate == verdict["with_saliency"]["distracted"] - verdict["without"]["distracted"]
    assert low <= estimate <= high
    markdown = (tiny_demo / "report" / "report.md").read_text()
    # The report opens with the verdict, before the results tables.
    assert markdown.index("## Verdict") < markdown.index("## Results")
    assert verdict["sentence"] in markdown
    assert "paired evaluation episodes" in markdown
    # One line on how much of the state the frozen encoder carries, beside raw pixels.
    probe = json.loads((tiny_demo / "probe.json").read_text())
    assert "## Encoder probe" in markdown
    if "skipped" not in probe:
        assert f"held-out R² {probe['encoder_r2']:.2f}" in markdown
        assert f"raw pixels {probe['pixels_r2']:.2f}" in markdown
    else:
        assert "at least 3 episodes" in probe["skipped"]


@pytest.mark.slow
def test_the_report_has_both_curves_on_one_plot_and_a_clip_per_arm(tiny_demo):
    report = tiny_demo / "report"
    markdown = (report / "report.md").read_text()
    page = (report / "index.html").read_text()
    assert "| task | bc-multimae-rgb | bc-multimae-rgb_x_saliency |" in markdown
    assert "under distractor video_easy" in markdown and "no distractor" in markdown
    images = {p.name: p.stat().st_size for p in (report / "images").iterdir()}
    assert images["curve_metaworld-reach.png"] > 1000  # one task: both arms on one plot
    for mode in ARMS:
        for condition in ("clean", "video_easy"):
            assert images[f"{mode}__policy_rollout_{condition}.gif"] > 1000
    for name in ("saliency_annotations.png", "saliency_predictor_preview.png"):
        assert images[f"rgb_x_saliency__{name}"] > 100
    assert page.count("data:image/gif;base64,") == 4
    assert "http://" not in page and "https://" not in page  # self-contained, no CDN
    state = json.loads((tiny_demo / "demo.json").read_text())
    assert set(state["stages"]) == set(STAGES)


@pytest.mark.slow
def test_a_finished_demo_is_skipped_and_other_settings_are_refused(tiny_demo, capsys):
    args = ["demo", "--preset", "tiny", "--out", str(tiny_demo), "--no-progress"]
    before = (tiny_demo / "rgb" / "eval.json").stat().st_mtime_ns
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("done already, skipped") == len(STAGES) - 1  # all but the report
    assert f"report: {tiny_demo / 'report' / 'index.html'}" in out
    assert (tiny_demo / "rgb" / "eval.json").stat().st_mtime_ns == before
    assert main([*args, "--seed", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "other settings (seed)" in err


def test_scale_multiplies_every_budget_and_hours_need_yes(tmp_path, capsys):
    base, doubled = demo_config("cpu"), demo_config("cpu", scale=2)
    assert doubled.bc_steps == 2 * base.bc_steps
    assert doubled.pretrain_steps == 2 * base.pretrain_steps
    assert doubled.predictor_steps == 2 * base.predictor_steps
    assert doubled.collect_episodes == 2 * base.collect_episodes
    assert doubled.annotate_frames == base.annotate_frames  # a person's work is not scaled
    assert demo_config("paper").pretrain_steps == 10_000
    assert main(["demo", "--scale", "0", "--out", "/nonexistent/x"]) == 2
    capsys.readouterr()
    # The paper preset runs for hours: it says how many and waits for --yes.
    assert main(["demo", "--preset", "paper", "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "hours on 2 CPU cores" in err and "--yes" in err
    assert not (tmp_path / "p").exists()
    # Bad arms and learners: one line.
    assert main(["demo", "--arms", "rgb", "rgb", "--out", str(tmp_path / "a")]) == 2
    assert "two different encoder modes" in capsys.readouterr().err
    assert main(["demo", "--env", "dmc:cartpole-swingup", "--out", str(tmp_path / "b")]) == 2
    assert "clones Meta-World's scripted experts" in capsys.readouterr().err


@pytest.mark.slow
def test_the_sac_learner_runs_both_arms(tmp_path):
    """The paper preset's path (SAC on DMC, rgb against rgb+saliency), at a tiny budget."""
    config = demo_config(
        "tiny", env_spec="dmc:cartpole-swingup", learner="sac", arms=("rgb", "rgb+saliency"),
        action_repeat=8, episode_length=6, frame_stack=2,
    )  # fmt: skip
    demo = Demo(tmp_path, config, progress=False, device="cpu", echo=lambda _: None)
    demo.run()
    verdict = json.loads((tmp_path / VERDICT_FILE).read_text())
    assert verdict["metric"] == "return"
    clean = json.loads((tmp_path / "rgb_plus_saliency" / "eval_clean.json").read_text())
    assert verdict["with_saliency"]["clean"] == clean["return_mean"]
    assert (tmp_path / "multimae" / "checkpoints").is_dir()  # rgb+saliency's encoder
    assert (tmp_path / "multimae_rgb" / "checkpoints").is_dir()  # rgb's


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
