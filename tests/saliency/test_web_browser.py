"""A real headless Chromium annotates through the page, and the stored maps are what it clicked.

Drives Debian's chromium with Playwright (Playwright's own browser download does not work
offline); skipped, with the reason, where playwright or chromium is missing.
"""

import shutil

import numpy as np
import pytest

from saliency_rl.saliency.annotations import AnnotationStore
from saliency_rl.saliency.maps import click_sigma, clicks_to_map
from saliency_rl.saliency.overlay import overlay
from saliency_rl.saliency.web import start_server

CHROMIUM_ARGS = [
    "--no-sandbox",  # tests may run as root in a container
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[dev]'")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip(
            "chromium is not installed: apt-get install chromium (scripts/setup.sh does it as root)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Annotator:
    """A person at the page: clicks at image pixels and waits for each change to be saved."""

    def __init__(self, page, size):
        self.page = page
        self.height, self.width = size

    def wait(self, frame):
        self.page.locator(f'body[data-frame="{frame}"][data-save-state="saved"]').wait_for()

    def click(self, x, y):
        """Click at image pixel coordinates (x, y); return the tolerance of the stored point."""
        box = self.page.locator("#canvas").bounding_box()
        self.page.mouse.click(
            box["x"] + x / self.width * box["width"], box["y"] + y / self.height * box["height"]
        )
        return 0.5 * self.width / box["width"]  # half a displayed pixel, in image pixels

    def key(self, key, frame):
        self.page.keyboard.press(key)
        self.wait(frame)


def assert_clicks(store, frame, expected, tolerance):
    clicks = store.clicks(frame)
    assert len(clicks) == len(expected)
    for click, (x, y) in zip(clicks, expected, strict=True):
        assert abs(click.x - x) <= tolerance and abs(click.y - y) <= tolerance
        assert click.annotator == "browser" and click.sigma == click_sigma(
            *store.dataset.image_size
        )
    saliency = store.saliency_map(frame)
    for x, y in expected:  # the map peaks on every clicked pixel
        row, col = int(y), int(x)
        around = saliency[max(row - 2, 0) : row + 3, max(col - 2, 0) : col + 3]
        assert saliency[row, col] == around.max() > 0.9
    if len(expected) == 1:
        assert np.unravel_index(saliency.argmax(), saliency.shape) == (int(y), int(x))


def test_annotating_in_the_browser_stores_exactly_what_was_clicked(browser, fake_dataset, tmp_path):
    store = AnnotationStore(fake_dataset)
    size = fake_dataset.image_size
    errors = []
    with start_server(fake_dataset.root, 4, annotator="browser") as server:
        frames = store.selection()
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(server.url)
        person = Annotator(page, size)
        person.wait(0)
        assert page.locator("#counter").inner_text() == "0/4"
        box = page.locator("#canvas").bounding_box()
        assert min(box["width"], box["height"]) >= 256
        assert page.evaluate("getComputedStyle(ui.canvas).imageRendering") == "pixelated"

        # Frame 0: one click, then a second one far away.
        tolerance = person.click(10.5, 20.5)
        person.wait(0)
        assert_clicks(store, frames[0], [(10.5, 20.5)], tolerance)
        assert page.locator("#counter").inner_text() == "1/4"
        person.click(25.25, 5.75)
        person.wait(0)
        assert_clicks(store, frames[0], [(10.5, 20.5), (25.25, 5.75)], tolerance)
        # The page's heat map is the stored one, and it is drawn over the frame.
        clicks = store.clicks(frames[0])
        shown = np.array(page.evaluate("Array.from(saliencyMap(app.clicks[0], app.H, app.W))"))
        expected = clicks_to_map(np.array([[c.x, c.y] for c in clicks]), *size)
        np.testing.assert_allclose(shown.reshape(size), expected, atol=1e-6)
        row, col = 20, 11  # one pixel beside a click: inside its Gaussian, clear of its marker
        drawn = page.evaluate(
            """([row, col]) => {
                const c = ui.canvas, scale = c.width / app.W;
                const x = Math.floor((col + 0.5) * scale), y = Math.floor((row + 0.5) * scale);
                return Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data.slice(0, 3));
            }""",
            [row, col],
        )
        rgb = fake_dataset.frame(frames[0], ["rgb"])["rgb"]
        blended = overlay(rgb, expected)[row, col].astype(int)
        assert np.abs(np.array(drawn) - blended).max() <= 3, (drawn, blended)

        # Frame 1 (keyboard): two clicks, undo (z), a third with the Undo button, clear, undo.
        person.key("d", 1)
        tolerance = person.click(4.5, 4.5)
        person.wait(1)
        person.click(28.5, 28.5)
        person.key("z", 1)
        assert_clicks(store, frames[1], [(4.5, 4.5)], tolerance)
        person.click(16.5, 16.5)
        person.wait(1)
        page.click("#undo")
        person.wait(1)
        assert_clicks(store, frames[1], [(4.5, 4.5)], tolerance)
        person.key("c", 1)
        assert store.clicks(frames[1]) == []
        person.key("Control+z", 1)
        assert_clicks(store, frames[1], [(4.5, 4.5)], tolerance)

        # Frame 2, shown at an odd size (a narrow window, a zoom): positions stay right.
        person.key("ArrowRight", 2)
        page.evaluate("ui.canvas.style.width = '301px'")
        tolerance = person.click(7.5, 30.5)
        person.wait(2)
        assert tolerance > 0.05  # a displayed pixel is about a tenth of an image pixel here
        assert_clicks(store, frames[2], [(7.5, 30.5)], tolerance)
        person.key("ArrowLeft", 1)
        person.key("a", 0)
        assert page.locator("#counter").inner_text() == "3/4"
        screenshot = tmp_path / "page.png"
        page.screenshot(path=screenshot)
        assert screenshot.stat().st_size > 0

        # Reopening resumes at the first frame without clicks.
        page.reload()
        person.wait(3)
        assert page.locator("#counter").inner_text() == "3/4"
        assert page.locator("#position").inner_text() == "frame 4 of 4"
        page.close()
    assert errors == []
    assert store.annotated() == sorted(frames[:3])


# ---------------------------------------------------------------------- the predictor overlay
# (fixtures fitted_predictor_64 and dataset_64: tests/saliency/conftest.py)
def open_page(browser, server, errors):
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(server.url)
    return page


def drawn_pixel(page, x, y):
    """The canvas's RGB at image pixel (x, y)."""
    return page.evaluate(
        """([x, y]) => {
            const c = ui.canvas, scale = c.width / app.W;
            const data = c.getContext('2d').getImageData(Math.floor(x * scale),
                Math.floor(y * scale), 1, 1).data;
            return Array.from(data.slice(0, 3));
        }""",
        [x, y],
    )


def test_the_predictors_map_is_offered_accepted_and_corrected_in_the_page_order(
    browser, dataset_64, fitted_predictor_64
):
    from saliency_rl.saliency.live_predictor import RefitConfig

    store = AnnotationStore(dataset_64)
    errors = []
    with start_server(
        dataset_64.root,
        4,
        annotator="browser",
        suggest=True,
        predictor=fitted_predictor_64,
        refit=RefitConfig(every=0),
    ) as server:
        app = server.get_app()
        order = app.state()["order"]
        assert order != sorted(order)  # the predictor's order, not the selection's
        page = open_page(browser, server, errors)
        person = Annotator(page, dataset_64.image_size)
        shown = f'body[data-prediction="shown"][data-prediction-frame="{order[0]}"]'
        page.locator(shown).wait_for()
        person.wait(order[0])
        assert page.evaluate("app.order") == order
        # Next walks the server's order, and the sidebar lists the frames in it.
        for k in order[1:]:
            person.key("d", k)
        dots = page.locator("#dots li")
        assert [int(dots.nth(i).get_attribute("data-position")) for i in range(4)] == order
        for k in reversed(order[:-1]):
            person.key("a", k)

        # The overlay is drawn, never stored; the toggle hides it.
        suggested = [(c["x"], c["y"]) for c in app.suggested_clicks(order[0])["clicks"]]
        assert suggested and store.annotated() == []
        x, y = suggested[0]
        with_overlay = drawn_pixel(page, x, y)
        page.click("#prediction")
        page.locator('body[data-prediction="hidden"]').wait_for()
        without = drawn_pixel(page, x, y)
        assert with_overlay[2] > without[2] + 40  # blue where the predictor is sure
        page.keyboard.press("p")
        page.locator(shown).wait_for()
        assert store.annotated() == []

        # Accept: the stored clicks are the server's suggestion, as the person's clicks.
        page.click("#accept")
        person.wait(order[0])
        assert_clicks(store, app.frames[order[0]], suggested, 1e-9)

        # Correct: accept on the next frame, add a click, remove an accepted one.
        person.key("d", order[1])
        page.locator(
            f'body[data-prediction="shown"][data-prediction-frame="{order[1]}"]'
        ).wait_for()
        suggested = [(c["x"], c["y"]) for c in app.suggested_clicks(order[1])["clicks"]]
        person.key("y", order[1])
        tolerance = person.click(5.5, 60.5)
        person.wait(order[1])
        frame = app.frames[order[1]]
        assert_clicks(store, frame, [*suggested, (5.5, 60.5)], tolerance)
        box = page.locator("#canvas").bounding_box()
        x, y = suggested[0]
        page.mouse.click(
            box["x"] + x / 64 * box["width"], box["y"] + y / 64 * box["height"], button="right"
        )
        person.wait(order[1])
        assert_clicks(store, frame, [*suggested[1:], (5.5, 60.5)], tolerance)
        page.close()
    assert errors == []
    assert store.annotated() == sorted(app.frames[k] for k in order[:2])


def test_a_refit_reaches_the_open_page(browser, dataset_64):
    from saliency_rl.saliency.live_predictor import RefitConfig

    errors = []
    refit = RefitConfig(every=2, size="tiny", steps=3, batch_size=4, device="cpu")
    with start_server(dataset_64.root, 3, annotator="browser", refit=refit) as server:
        page = open_page(browser, server, errors)
        person = Annotator(page, dataset_64.image_size)
        person.wait(0)
        assert page.locator("#accept").is_disabled() and page.locator("#prediction").is_disabled()
        assert "no predictor" in page.locator("#predictor-status").inner_text()
        person.click(20.5, 20.5)
        person.wait(0)
        person.key("d", 1)
        person.click(30.5, 30.5)
        person.wait(1)
        # The page polls while the refit runs and shows the new predictor's map when it lands.
        page.locator('body[data-predictor-version="1"][data-prediction="shown"]').wait_for()
        assert "predictor 1 on 2 frames" in page.locator("#predictor-status").inner_text()
        assert page.locator("#prediction").is_enabled()
        server.get_app().live.wait(60)
        page.close()
    assert errors == []
