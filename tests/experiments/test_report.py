"""``saliency-rl report``: the papers' table layout from run directories of both eval.json
formats, and the page as a person sees it in a real headless Chromium."""

import csv
import json
import shutil
from pathlib import Path

import pytest

from saliency_rl.cli import main
from saliency_rl.experiments.report import find_runs, tables

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]


def make_run(root, name, env, method, seed, final, history=(), algo="sac", extra=None):
    """A run directory as the trainers write it (config.json, metrics.csv, eval.json)."""
    run = root / name
    run.mkdir(parents=True)
    config = {"algo": algo, "env": env, "method": method, "seed": seed, "env_options": {}}
    (run / "config.json").write_text(json.dumps(config))
    with (run / "metrics.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "episode_return"])
        for step in (10, 20, 30):
            writer.writerow([step, step * (seed + 1)])
    (run / "eval.json").write_text(json.dumps({"final": final, "history": list(history)}))
    for file, content in (extra or {}).items():
        (run / file).write_text(json.dumps(content))
    return run


def test_table_is_mean_and_std_over_seeds_with_the_best_in_bold(tmp_path, capsys):
    for seed, (a, b) in enumerate([(100.0, 300.0), (200.0, 500.0)]):
        make_run(tmp_path, f"cp_rgb_{seed}", "dmc:cartpole-swingup", "rgb", seed,
                 {"return_mean": a, "return_std": 1.0, "episodes": 10},
                 [{"step": 5, "return_mean": a / 2}, {"step": 10, "return_mean": a}])  # fmt: skip
        make_run(tmp_path, f"cp_rgbs_{seed}", "dmc:cartpole-swingup", "rgbs", seed,
                 {"return_mean": b, "return_std": 1.0, "episodes": 10},
                 extra={"eval_video_hard.json": {"return_mean": b / 10, "episodes": 10},
                        "eval_video_hard@dmcgb.json": {"return_mean": b / 5, "episodes": 10}})  # fmt: skip
        # Meta-World: success rate in %; an A2C-format final on another task.
        make_run(tmp_path, f"reach_rgb_{seed}", "metaworld:reach", "rgb", seed,
                 {"return_mean": 1.0, "success_rate": 0.5 + 0.5 * seed})  # fmt: skip
        make_run(tmp_path, f"pac_{seed}", "atari:MsPacman", "a2c-joint", seed,
                 {"step": 10, "mean": 1000.0 + seed * 200, "std": 5.0},
                 [{"step": 10, "mean": 900.0}], algo="a2c")  # fmt: skip
    runs = find_runs([tmp_path])
    assert len(runs) == 8
    final = tables(runs)[0]
    assert final.condition == "final"
    assert final.text("dmc:cartpole-swingup", "rgb") == "150.0 ± 50.0"
    assert final.text("dmc:cartpole-swingup", "rgbs") == "400.0 ± 100.0"
    assert final.best("dmc:cartpole-swingup") == {"rgbs"}
    assert final.text("metaworld:reach", "rgb") == "75.0 ± 25.0"  # success, %
    assert final.text("atari:MsPacman", "a2c-joint") == "1100.0 ± 100.0"
    assert [t.condition for t in tables(runs)] == ["final", "video_hard", "video_hard@dmcgb"]
    # IQM with its stratified-bootstrap interval (2 seeds: the IQM is the mean; the
    # interval spans the two resamplings' extremes).
    assert final.text("dmc:cartpole-swingup", "rgb", "iqm") == "150.0 [100.0, 200.0]"

    out = tmp_path / "report"
    assert main(["report", str(tmp_path), "--out", str(out)]) == 0
    markdown = (out / "report.md").read_text()
    assert "| task | a2c-joint | rgb | rgbs |" in markdown  # rows tasks, columns methods
    assert "| dmc:cartpole-swingup | – | 150.0 ± 50.0 | **400.0 ± 100.0** |" in markdown
    assert "| atari:MsPacman | **1100.0 ± 100.0** | – | – |" not in markdown  # one method: no bold
    assert "| atari:MsPacman | 1100.0 ± 100.0 | – | – |" in markdown
    assert "IQM [95 % stratified-bootstrap interval]" in markdown
    # Each distractor table says which set its numbers come from.
    assert "video_hard (" in markdown and "our own distractor set, not comparable" in markdown
    assert "video_hard with the files of dmcgb" in markdown
    assert (
        "| dmc:cartpole-swingup | – | 150.0 [100.0, 200.0] | **400.0 [300.0, 500.0]** |" in markdown
    )
    for task in ("dmc-cartpole-swingup", "metaworld-reach", "atari-MsPacman"):
        assert (out / "images" / f"curve_{task}.png").stat().st_size > 1000
    assert "<details" in (out / "index.html").read_text()  # configs, collapsible


def test_an_a2c_run_of_the_first_eval_format_still_reports(tmp_path):
    """tests/fixtures/a2c_v1: eval.json as A2C wrote it before the one format (``mean``,
    ``std``; history without ``return_mean``), beside a run in today's format."""
    fixture = Path(__file__).parents[1] / "fixtures" / "a2c_v1" / "run"
    shutil.copytree(fixture, tmp_path / "old")
    entry = {"step": 20, "frames": 80, "return_mean": 3.0, "return_std": 1.0, "episodes": 2,
             "returns": [2.0, 4.0], "lengths": [5, 5]}  # fmt: skip
    make_run(tmp_path, "new", "atari:Pong", "a2c-none", 1, entry, [{**entry, "step": 10}, entry],
             algo="a2c")  # fmt: skip
    runs = {r.path.name: r for r in find_runs([tmp_path])}
    assert runs["old"].results["final"] == {"return_mean": 0.0, "return_std": 0.0, "episodes": 1.0}
    assert runs["old"].curve == [(10.0, 0.0), (20.0, 0.0)]
    assert runs["new"].results["final"] == {"return_mean": 3.0, "return_std": 1.0, "episodes": 2.0}
    assert runs["new"].curve == [(10.0, 3.0), (20.0, 3.0)]
    assert tables(list(runs.values()))[0].text("atari:Pong", "a2c-none") == "1.5 ± 1.5"


def test_report_of_nothing_is_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no runs under" in err


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[dev]'")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("chromium is not installed: apt-get install chromium (scripts/setup.sh)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.mark.slow
def test_the_demo_report_renders_in_chromium_with_every_image(tiny_demo, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    try:
        page.goto((tiny_demo / "report" / "index.html").as_uri())
        page.wait_for_load_state("load")
        images = page.eval_on_selector_all(
            "img", "els => els.map(e => [e.alt, e.complete, e.naturalWidth, e.naturalHeight])"
        )
        assert len(images) == 8  # curve, 3 figures, a GIF clip per arm and condition
        missing = [
            alt
            for alt, complete, width, height in images
            if not (complete and width > 0 and height > 0)
        ]
        assert not missing, f"images not shown: {missing}"
        assert page.locator("table.results td.best, table.results td").count() >= 3
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
    finally:
        page.close()
