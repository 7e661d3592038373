"""The annotation server: the round trip of clicks, and every bad request refused with a 4xx
that changes nothing on disk. Most tests call the WSGI app directly; some go through a real
server on 127.0.0.1 so the HTTP layer (raw paths, Content-Length) is exercised too."""

import http.client
import io
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import numpy as np
import pytest
from PIL import Image

from saliency_rl.cli import main
from saliency_rl.saliency.annotations import AnnotationStore, Click
from saliency_rl.saliency.maps import click_sigma, clicks_to_map
from saliency_rl.saliency.web import AnnotationApp, start_server
from saliency_rl.saliency.web.server import MAX_BODY_BYTES, MAX_CLICKS, REQUEST_TIMEOUT_S

STATIC = Path(__file__).parents[2] / "src" / "saliency_rl" / "saliency" / "web" / "static"


def call(app, method, path, body=b"", content_type="application/json", host="127.0.0.1:8765"):
    """One request through the WSGI app: (status, headers, body bytes)."""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "HTTP_HOST": host,
    }
    setup_testing_defaults(environ)
    answer = {}

    def start_response(status, headers):
        answer["status"], answer["headers"] = int(status.split()[0]), dict(headers)

    data = b"".join(app(environ, start_response))
    assert answer["headers"]["Content-Length"] == str(len(data))
    return answer["status"], answer["headers"], data


def put(app, position, clicks):
    body = json.dumps({"clicks": [{"x": x, "y": y} for x, y in clicks]}).encode()
    return call(app, "PUT", f"/api/frame/{position}/clicks", body)


def snapshot(root):
    """Every file under the dataset with its bytes: 'nothing changed' means equal snapshots."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture
def app(fake_dataset):
    return AnnotationApp(fake_dataset, 4, seed=0, annotator="ann")


def test_state_describes_the_selection_and_resumes_at_the_first_frame_without_clicks(app):
    status, headers, body = call(app, "GET", "/api/state")
    assert status == 200 and headers["Content-Type"] == "application/json"
    state = json.loads(body)
    frames = AnnotationStore(app.dataset).selection()
    assert [f["frame"] for f in state["frames"]] == frames
    assert state["image_size"] == [32, 32] and state["sigma"] == click_sigma(32, 32)
    assert (state["annotator"], state["done"], state["total"], state["resume"]) == ("ann", 0, 4, 0)
    put(app, 0, [(3.0, 4.0)])
    put(app, 2, [(5.0, 6.0)])
    state = json.loads(call(app, "GET", "/api/state")[2])
    assert (state["done"], state["resume"]) == (2, 1)
    assert [f["clicks"] for f in state["frames"]] == [1, 0, 1, 0]


def test_clicks_round_trip_in_image_pixels_with_annotator_time_and_sigma(app):
    status, _, body = put(app, 1, [(10.25, 20.5), (0.0, 31.999)])
    assert status == 200
    record = json.loads(body)
    assert (record["position"], record["done"], record["total"]) == (1, 1, 4)
    frame = app.frames[1]
    assert record["frame"] == frame
    clicks = AnnotationStore(app.dataset).clicks(frame)
    assert [(c.x, c.y) for c in clicks] == [(10.25, 20.5), (0.0, 31.999)]
    assert {(c.sigma, c.annotator) for c in clicks} == {(click_sigma(32, 32), "ann")}
    assert json.loads(call(app, "GET", "/api/frame/1/clicks")[2])["clicks"] == record["clicks"]
    expected = clicks_to_map(np.array([[10.25, 20.5], [0.0, 31.999]]), 32, 32)
    np.testing.assert_array_equal(AnnotationStore(app.dataset).saliency_map(frame), expected)


def test_kept_clicks_keep_their_time_and_annotator(app):
    store = AnnotationStore(app.dataset)
    frame = app.frames[0]
    store.save(frame, [Click(1.5, 2.5, 1.0, "oracle", "2020-01-01T00:00:00+00:00")])
    put(app, 0, [(1.5, 2.5), (7.0, 8.0)])
    first, second = store.clicks(frame)
    assert (first.annotator, first.time, first.sigma) == (
        "oracle",
        "2020-01-01T00:00:00+00:00",
        1.0,
    )
    assert second.annotator == "ann" and second.time > first.time
    put(app, 0, [(1.5, 2.5)])  # undo
    assert store.clicks(frame) == [first]


def test_clearing_a_frame_never_annotated_writes_nothing(app):
    before = snapshot(app.dataset.root)
    status, _, body = put(app, 3, [])
    assert status == 200 and json.loads(body)["clicks"] == []
    assert snapshot(app.dataset.root) == before
    put(app, 3, [(1.0, 1.0)])
    put(app, 3, [])  # clearing an annotated frame stores the empty list
    assert AnnotationStore(app.dataset).clicks(app.frames[3]) == []


def test_image_is_the_stored_frame_at_native_resolution(app):
    status, headers, body = call(app, "GET", "/api/frame/2/image.png")
    assert status == 200 and headers["Content-Type"] == "image/png"
    image = np.asarray(Image.open(io.BytesIO(body)))
    expected = app.dataset.frame(app.frames[2], ["rgb"])["rgb"].transpose(1, 2, 0)
    np.testing.assert_array_equal(image, expected)


def test_page_and_assets_are_served_from_the_package_and_fetch_nothing_elsewhere(app):
    for path, kind in [
        ("/", "text/html"),
        ("/static/annotate.js", "text/javascript"),
        ("/static/annotate.css", "text/css"),
    ]:
        status, headers, body = call(app, "GET", path)
        assert status == 200 and headers["Content-Type"].startswith(kind)
        assert not re.search(rb"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", body), path  # no CDN
        assert headers["X-Content-Type-Options"] == "nosniff"
    assert b'id="canvas"' in call(app, "GET", "/")[2]
    assert {p.name for p in STATIC.iterdir()} == {"index.html", "annotate.js", "annotate.css"}


TOO_MANY = json.dumps({"clicks": [{"x": 1, "y": 1}] * (MAX_CLICKS + 1)}).encode()
BAD_BODIES = {
    # name: (body of PUT /api/frame/0/clicks, expected status, words in the message)
    "x = width": (b'{"clicks": [{"x": 32, "y": 1}]}', 400, "outside the 32x32 image"),
    "negative y": (b'{"clicks": [{"x": 1, "y": -0.1}]}', 400, "outside the 32x32 image"),
    "garbage JSON": (b"{oops", 400, "not valid JSON"),
    "not UTF-8": (b'{"clicks": "\xff"}', 400, "not valid JSON"),
    "NaN": (b'{"clicks": [{"x": NaN, "y": 1}]}', 400, "not valid JSON"),
    "deep nesting": (b"[" * 20000, 400, "not valid JSON"),
    "empty body": (b"", 400, "not valid JSON"),
    "a list": (b'[{"x": 1, "y": 1}]', 400, "JSON object"),
    "extra key": (b'{"clicks": [], "frame": 3}', 400, "JSON object"),
    "sigma given": (b'{"clicks": [{"x": 1, "y": 1, "sigma": 9}]}', 400, "exactly"),
    "x a string": (b'{"clicks": [{"x": "1", "y": 1}]}', 400, "must be a number"),
    "x a bool": (b'{"clicks": [{"x": true, "y": 1}]}', 400, "must be a number"),
    "too many clicks": (TOO_MANY, 400, f"at most {MAX_CLICKS}"),
    "too large": (b" " * (MAX_BODY_BYTES + 1), 413, f"at most {MAX_BODY_BYTES}"),
}
BAD_ROUTES = {
    # name: (method, path, expected status, words in the message); PUTs send no clicks
    "wrong index": ("PUT", "/api/frame/4/clicks", 404, "does not exist"),
    "huge index": ("GET", "/api/frame/999999999/clicks", 404, "does not exist"),
    "negative index": ("GET", "/api/frame/-1/clicks", 404, "no such page"),
    "index of an image": ("GET", "/api/frame/4/image.png", 404, "does not exist"),
    "bad method": ("DELETE", "/api/frame/0/clicks", 405, "not allowed"),
    "PUT the state": ("PUT", "/api/state", 405, "not allowed"),
    "PUT an image": ("PUT", "/api/frame/0/image.png", 405, "not allowed"),
    "path up": ("GET", "/../meta.json", 404, "no such page"),
    "path as the index": ("GET", "/api/frame/../../meta.json/clicks", 404, "no such page"),
    "path after the index": ("PUT", "/api/frame/0/../../../meta.json", 404, "no such page"),
    "path under static": ("GET", "/static/../../../dataset.py", 404, "no such page"),
    "absolute path": ("GET", "/api/frame//etc/passwd/clicks", 404, "no such page"),
    "a dataset file": ("GET", "/annotations/selection.json", 404, "no such page"),
}


def assert_refused(app, method, path, body, content_type, expected, words):
    put(app, 0, [(5.0, 5.0)])  # something on disk that a bad request could spoil
    before = snapshot(app.dataset.root)
    status, headers, data = call(app, method, path, body, content_type)
    assert status == expected
    assert headers["Content-Type"] == "application/json"
    assert words in json.loads(data)["error"]
    assert snapshot(app.dataset.root) == before
    if status == 405:
        assert "Allow" in headers


@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_bad_bodies_get_a_4xx_with_a_message_and_change_nothing(app, name):
    body, expected, words = BAD_BODIES[name]
    assert_refused(app, "PUT", "/api/frame/0/clicks", body, "application/json", expected, words)


@pytest.mark.parametrize("name", list(BAD_ROUTES))
def test_bad_routes_get_a_4xx_with_a_message_and_change_nothing(app, name):
    method, path, expected, words = BAD_ROUTES[name]
    body = b'{"clicks": []}' if method == "PUT" else b""
    assert_refused(app, method, path, body, "application/json", expected, words)


def test_clicks_must_be_sent_as_json(app):
    body = b'{"clicks": []}'
    assert_refused(app, "PUT", "/api/frame/0/clicks", body, "text/plain", 415, "application/json")


def test_a_foreign_host_name_is_refused_on_loopback(app):
    """A page on another site whose name was re-pointed at 127.0.0.1 (DNS rebinding) gets 403."""
    before = snapshot(app.dataset.root)
    status, _, body = call(
        app, "PUT", "/api/frame/0/clicks", b'{"clicks": []}', host="evil.example:8765"
    )
    assert status == 403 and "not this machine" in json.loads(body)["error"]
    assert snapshot(app.dataset.root) == before
    for host in ("localhost:8765", "127.0.0.1", "[::1]:8765"):
        assert call(app, "GET", "/api/state", host=host)[0] == 200


# ---------------------------------------------------------------------- over real HTTP
def request(url, method, path, body=None, headers=None):
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_real_server_on_loopback_answers_and_refuses(fake_dataset):
    with start_server(fake_dataset.root, 3, annotator="ann") as server:
        assert server.server_address[0] == "127.0.0.1"
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", server.url)
        json_type = {"Content-Type": "application/json"}
        status, body = request(
            server.url, "PUT", "/api/frame/2/clicks", b'{"clicks": [{"x": 4, "y": 5}]}', json_type
        )
        assert status == 200 and json.loads(body)["done"] == 1
        before = snapshot(fake_dataset.root)
        for path in (
            "/api/frame/%2e%2e%2f%2e%2e%2fmeta.json/clicks",
            "/static/..%2fannotate.js%2f..%2f..%2fmeta.json",
            "/%2e%2e/meta.json",
        ):
            status, body = request(server.url, "GET", path)
            assert status == 404 and "no such page" in json.loads(body)["error"]
        # A declared length over the limit is refused before the body is read (none is sent).
        status, body = request(
            server.url,
            "PUT",
            "/api/frame/0/clicks",
            None,
            {**json_type, "Content-Length": str(10**9)},
        )
        assert status == 413
        assert snapshot(fake_dataset.root) == before
    store = AnnotationStore(fake_dataset)
    assert [(c.x, c.y) for c in store.clicks(store.selection()[2])] == [(4.0, 5.0)]


def test_cli_serves_until_interrupted(fake_dataset):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "saliency_rl.cli",
            "annotate",
            str(fake_dataset.root),
            "--frames",
            "3",
            "--port",
            "0",
            "--annotator",
            "cli",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as in a terminal: a shell starts background jobs with SIGINT ignored, and a
        # Python started with it ignored never raises KeyboardInterrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    idle = None
    try:
        line = process.stdout.readline()
        url = re.search(r"http://\S+", line).group(0)
        status, body = request(url, "GET", "/api/state")
        assert status == 200 and json.loads(body)["annotator"] == "cli"
        assert json.loads(body)["total"] == 3
        # A connection that sends nothing, as a browser's pre-opened one: Ctrl-C must not wait
        # for it (its thread would block for REQUEST_TIMEOUT_S).
        parts = urllib.parse.urlsplit(url)
        idle = socket.create_connection((parts.hostname, parts.port))
        time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGINT)
        start = time.monotonic()
        try:
            out, err = process.communicate(timeout=120)
        finally:
            process.kill()
            if idle is not None:
                idle.close()
    assert time.monotonic() - start < REQUEST_TIMEOUT_S, "Ctrl-C waited for the idle connection"
    assert process.returncode == 0, err
    assert "stopped: 0/3 frames annotated" in out


def test_an_idle_connection_times_out_quietly(fake_dataset, monkeypatch, capsys):
    from saliency_rl.saliency.web import server as server_module

    monkeypatch.setattr(server_module._QuietHandler, "timeout", 0.2)
    with start_server(fake_dataset.root, 3) as server:
        parts = urllib.parse.urlsplit(server.url)
        with socket.create_connection((parts.hostname, parts.port)) as idle:
            idle.settimeout(5)
            assert idle.recv(1) == b""  # the server dropped it after its timeout
        status, _ = request(server.url, "GET", "/api/state")
        assert status == 200
    assert "Traceback" not in capsys.readouterr().err


def test_cli_names_a_bad_port_or_name_in_one_line(fake_dataset, capsys):
    assert main(["annotate", str(fake_dataset.root), "--port", "70000"]) == 2
    assert "port 70000 is not valid" in capsys.readouterr().err
    assert main(["annotate", str(fake_dataset.root), "--annotator", " "]) == 2
    assert "annotator name" in capsys.readouterr().err


def test_the_page_offers_suggested_frames_first(fake_dataset):
    from saliency_rl.saliency.annotations import suggest_frames
    from saliency_rl.saliency.web.server import AnnotationApp

    app = AnnotationApp(fake_dataset, 4, suggest=True)
    assert app.frames == suggest_frames(fake_dataset, 4)
    assert [f["frame"] for f in app.state()["frames"]] == app.frames


# ---------------------------------------------------------------------- the predictor overlay
# (fixtures fitted_predictor_64 and dataset_64: tests/saliency/conftest.py)
TINY_REFIT = {"size": "tiny", "steps": 3, "batch_size": 4, "device": "cpu"}


def test_the_predictors_map_and_its_clicks_are_served_and_never_written(
    dataset_64, fitted_predictor_64
):
    from saliency_rl.saliency.live_predictor import RefitConfig
    from saliency_rl.saliency.predicted_clicks import clicks_from_map
    from saliency_rl.saliency.predictor import SaliencyPredictor

    app = AnnotationApp(
        dataset_64, 4, annotator="ann", predictor=fitted_predictor_64, refit=RefitConfig(every=0)
    )
    before = snapshot(dataset_64.root)
    status, headers, body = call(app, "GET", "/api/frame/1/prediction.png")
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert headers["X-Predictor-Version"] == "1"
    shown = np.asarray(Image.open(io.BytesIO(body)))
    predictor = SaliencyPredictor.load(fitted_predictor_64, device="cpu")
    rgb = dataset_64.frame(app.frames[1], ["rgb"])["rgb"]
    np.testing.assert_array_equal(shown, predictor.predict_uint8(rgb[None])[0])

    status, _, body = call(app, "GET", "/api/frame/1/suggested_clicks")
    suggested = json.loads(body)
    assert status == 200 and (suggested["frame"], suggested["version"]) == (app.frames[1], 1)
    expected = clicks_from_map(shown / 255.0, click_sigma(64, 64))
    assert [(c["x"], c["y"]) for c in suggested["clicks"]] == expected and expected
    # The body the predictor learnt: the suggestion lies on the simulator's salient point.
    point = dataset_64.frame(app.frames[1], ["salient_points"])["salient_points"][0]
    assert np.hypot(*(np.array(expected[0]) - point)) < 3
    state = json.loads(call(app, "GET", "/api/state")[2])["predictor"]
    assert (state["state"], state["source"], state["version"], state["frames"]) == (
        "ready",
        "checkpoint",
        1,
        12,  # the oracle-annotated frames it was fitted on
    )
    assert snapshot(dataset_64.root) == before  # showing and suggesting write nothing
    for path in ("/api/frame/0/prediction.png", "/api/frame/0/suggested_clicks"):
        assert_refused(app, "PUT", path, b'{"clicks": []}', "application/json", 405, "allowed")
    assert_refused(app, "GET", "/api/frame/4/suggested_clicks", b"", "", 404, "does not exist")


def test_without_a_predictor_the_prediction_routes_say_how_to_get_one(dataset_64):
    from saliency_rl.saliency.live_predictor import RefitConfig

    app = AnnotationApp(dataset_64, 3, refit=RefitConfig(every=0))
    state = json.loads(call(app, "GET", "/api/state")[2])
    assert state["predictor"]["state"] == "none" and not state["predictor"]["available"]
    for path in ("/api/frame/0/prediction.png", "/api/frame/0/suggested_clicks"):
        assert_refused(app, "GET", path, b"", "", 404, "no saliency predictor yet")


def test_refits_after_every_n_new_frames_and_a_failed_refit_keeps_the_last_good_one(dataset_64):
    from saliency_rl.checkpoint import is_checkpoint
    from saliency_rl.saliency.live_predictor import LIVE_DIR, RefitConfig

    app = AnnotationApp(dataset_64, 4, annotator="ann", refit=RefitConfig(every=2, **TINY_REFIT))
    record = json.loads(put(app, 0, [(20.5, 30.5)])[2])
    assert record["predictor"]["state"] == "none"  # one new frame of two
    record = json.loads(put(app, 1, [(40.5, 10.5)])[2])
    assert record["predictor"]["state"] == "fitting"
    assert app.live.wait(60)
    status = app.state()["predictor"]
    assert (status["state"], status["source"], status["frames"], status["version"]) == (
        "ready",
        "refit",
        2,
        1,
    )
    live = dataset_64.root / LIVE_DIR
    assert is_checkpoint(live) and call(app, "GET", "/api/frame/2/prediction.png")[0] == 200
    kept = snapshot(live)

    # Every annotated frame emptied ("nothing to look at"): the refit has nothing to learn.
    store = AnnotationStore(dataset_64)
    for frame in store.annotated():
        store.save(frame, [])
    app.live.request_refit()
    assert app.live.wait(60)
    status = app.state()["predictor"]
    assert status["state"] == "ready" and status["version"] == 1 and status["refits"] == 1
    assert "has a click" in status["error"]
    assert snapshot(live) == kept
    assert [p.name for p in live.parent.iterdir()] == ["live"]  # no temporary left behind
    assert call(app, "GET", "/api/frame/2/prediction.png")[0] == 200

    # A new session starts from the predictor the last one refitted.
    again = AnnotationApp(dataset_64, 4, refit=RefitConfig(every=2, **TINY_REFIT))
    assert again.state()["predictor"]["source"] == "refit"


def test_a_refit_asked_for_while_one_runs_queues_exactly_one_more(dataset_64):
    from saliency_rl.saliency.live_predictor import RefitConfig

    app = AnnotationApp(dataset_64, 3, refit=RefitConfig(every=0, **TINY_REFIT))
    put(app, 0, [(20.5, 30.5)])
    for _ in range(4):
        app.live.request_refit()
    assert app.live.status()["state"] == "fitting"
    assert app.live.wait(60)
    status = app.live.status()
    assert (status["refits"], status["version"], status["error"]) == (2, 2, None)


def test_with_suggest_the_page_offers_the_frames_the_predictor_is_least_sure_about(
    dataset_64, fitted_predictor_64
):
    from saliency_rl.saliency.annotations import suggest_frames
    from saliency_rl.saliency.live_predictor import RefitConfig
    from saliency_rl.saliency.predictor import SaliencyPredictor
    from saliency_rl.saliency.uncertainty import map_entropy, uncertainty_of, walk_order

    predictor = SaliencyPredictor.load(fitted_predictor_64, device="cpu")
    app = AnnotationApp(
        dataset_64, 5, suggest=True, predictor=fitted_predictor_64, refit=RefitConfig(every=0)
    )
    # New frames: chosen by the predictor's uncertainty (and coverage), not coverage alone.
    assert app.frames == suggest_frames(dataset_64, 5, [], uncertainty_of(predictor, dataset_64))
    maps = predictor.predict_uint8(dataset_64.frames(app.frames, ["rgb"])["rgb"]) / 255.0
    scores = map_entropy(maps)
    state = app.state()
    assert state["order"] == walk_order([False] * 5, scores.tolist())
    assert state["order"] == sorted(range(5), key=lambda k: -scores[k])
    assert state["resume"] == state["order"][0]
    last = state["order"][-1]
    put(app, last, [(3.0, 4.0)])
    state = app.state()
    assert state["order"][0] == last and state["resume"] == state["order"][1]
    # Without suggest, the selection's own order.
    plain = AnnotationApp(dataset_64, 5, predictor=fitted_predictor_64, refit=RefitConfig(every=0))
    assert plain.state()["order"] == list(range(5))


def test_cli_names_a_bad_predictor_or_refit_option_in_one_line(
    fake_dataset, tiny_predictor_64, capsys
):
    root = str(fake_dataset.root)
    assert main(["annotate", root, "--predictor", str(tiny_predictor_64)]) == 2
    err = capsys.readouterr().err.strip()
    assert "takes 3-channel 64x64 frames" in err and "32x32" in err and "\n" not in err
    assert main(["annotate", root, "--predictor", root]) == 2
    assert "is a dataset, not a saliency predictor" in capsys.readouterr().err
    assert main(["annotate", root, "--oracle", "--refit-every", "3"]) == 2
    assert "--refit-every is only used by the web page" in capsys.readouterr().err
    for flag, value in (("--refit-every", "-1"), ("--refit-steps", "0"), ("--refit-steps", "x")):
        with pytest.raises(SystemExit) as exit_info:
            main(["annotate", root, flag, value])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert flag in err and "\n" not in err
