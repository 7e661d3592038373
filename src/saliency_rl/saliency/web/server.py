"""The annotation web page's server: a small WSGI app over an ``AnnotationStore``.

Routes (``k`` is a frame's position in the selection, 0-based; answers are JSON unless named)::

    GET /                          the page (static/index.html), with its script and style:
    GET /static/annotate.js, /static/annotate.css
    GET /api/state                 selection, image size, sigma, annotator, done/total, resume
    GET /api/frame/<k>/image.png   the frame as a PNG at its stored resolution
    GET /api/frame/<k>/clicks      its stored clicks
    PUT /api/frame/<k>/clicks      replace them: {"clicks": [{"x": 12.5, "y": 3.25}, ...]}
    GET /api/frame/<k>/prediction.png    the current predictor's map of it, 8-bit grey PNG
    GET /api/frame/<k>/suggested_clicks  that map's peaks as clicks, for the page to accept

The state also says which predictor is current (``LivePredictor.status``) and the order the
page offers the frames in (``uncertainty.walk_order``: with ``suggest`` and a predictor, the
frames it is least sure about first). The prediction routes only read: clicks are written by
PUT alone, so a predicted map becomes clicks only when the person accepts it on the page.

Safety: routes are a fixed table, so no part of a request names a file; every request is
validated (frame position, coordinates inside the image, payload size and shape, JSON) and
a bad one gets a 4xx with ``{"error": "..."}`` before anything is written. Writes go through
``AnnotationStore.save``, which is atomic. PUT needs a JSON content type, which a page from
another site cannot send without a CORS preflight we never grant; on a loopback address the
Host header must name this machine, which defeats DNS rebinding.
"""

from __future__ import annotations

import getpass
import io
import ipaddress
import json
import math
import re
import socket
import socketserver
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict
from http import HTTPStatus
from importlib import resources
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

import numpy as np
from PIL import Image

from saliency_rl.data.dataset import Dataset
from saliency_rl.errors import DatasetError, SaliencyRLError
from saliency_rl.saliency.annotations import ORACLE, AnnotationStore, Click, now
from saliency_rl.saliency.live_predictor import LivePredictor, RefitConfig
from saliency_rl.saliency.maps import click_sigma
from saliency_rl.saliency.predicted_clicks import SUGGEST_THRESHOLD, clicks_from_map
from saliency_rl.saliency.uncertainty import map_entropy, uncertainty_of, walk_order

MAX_BODY_BYTES = 64 * 1024
"""Largest request body accepted (413 above): 100 clicks take about 4 KiB."""
MAX_CLICKS = 100
"""Most clicks stored on one frame; a few per salient object is the intent."""
MAX_ANNOTATOR_CHARS = 64
REQUEST_TIMEOUT_S = 30
"""A connection that sends nothing for this long is dropped, so it cannot hold a thread."""
DEFAULT_PORT = 8765

_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/annotate.js": ("annotate.js", "text/javascript; charset=utf-8"),
    "/static/annotate.css": ("annotate.css", "text/css; charset=utf-8"),
}
_FRAME_ROUTE = re.compile(
    r"/api/frame/(\d{1,9})/(image\.png|clicks|prediction\.png|suggested_clicks)"
)
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
_SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    (
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'",
    ),
    ("Cache-Control", "no-store"),  # another dataset may be served on this port tomorrow
]

Response = tuple[int, list[tuple[str, str]], bytes]


class RequestError(Exception):
    """A request the server refuses: answered with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = list(headers)


def default_annotator() -> str:
    """The login name, or ``anonymous`` where the system has none."""
    try:
        return getpass.getuser() or "anonymous"
    except (OSError, KeyError):  # no USER variable and no passwd entry (some containers)
        return "anonymous"


def _check_annotator(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_ANNOTATOR_CHARS or not name.isprintable():
        raise SaliencyRLError(
            f"annotator name {name!r} is not valid: give 1 to {MAX_ANNOTATOR_CHARS} printable characters"
        )
    if name.lower() == ORACLE:  # the oracle may replace its own clicks, never a person's
        raise SaliencyRLError(
            f"annotator name {name!r} is reserved for `annotate --oracle`: give your own name"
        )
    return name


# ---------------------------------------------------------------------- request parsing
def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def parse_clicks(body: bytes, height: int, width: int) -> list[tuple[float, float]]:
    """The (x, y) points of a PUT body ``{"clicks": [{"x": .., "y": ..}, ...]}``, validated.

    Raises RequestError (400) naming the first fault: not UTF-8 JSON, wrong shape, a
    coordinate that is not a finite number or lies outside [0, width) x [0, height), or more
    than MAX_CLICKS clicks.
    """
    try:
        payload = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise RequestError(400, f"the body is not valid JSON: {error}") from None
    if not isinstance(payload, dict) or set(payload) != {"clicks"}:
        raise RequestError(
            400, 'the body must be a JSON object {"clicks": [{"x": X, "y": Y}, ...]}'
        )
    clicks = payload["clicks"]
    if not isinstance(clicks, list):
        raise RequestError(400, '"clicks" must be a list of {"x": X, "y": Y} objects')
    if len(clicks) > MAX_CLICKS:
        raise RequestError(400, f"{len(clicks)} clicks on one frame; at most {MAX_CLICKS} are kept")
    points = []
    for i, click in enumerate(clicks):
        if not isinstance(click, dict) or set(click) != {"x", "y"}:
            raise RequestError(400, f'click {i} must be an object with exactly "x" and "y"')
        x, y = click["x"], click["y"]
        for name, value in (("x", x), ("y", y)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise RequestError(400, f"click {i}: {name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise RequestError(400, f"click {i}: {name} must be finite, got {value!r}")
        if not (0 <= x < width and 0 <= y < height):
            raise RequestError(
                400,
                f"click {i} at ({x}, {y}) is outside the {width}x{height} image: x must be in "
                f"[0, {width}) and y in [0, {height}) image pixels",
            )
        points.append((float(x), float(y)))
    return points


def _read_body(environ: dict) -> bytes:
    """The request body, refused with 413 above MAX_BODY_BYTES before any of it is read."""
    text = environ.get("CONTENT_LENGTH") or "0"
    try:
        length = int(text)
    except ValueError:
        raise RequestError(400, f"Content-Length {text!r} is not a number") from None
    if length < 0:
        raise RequestError(400, f"Content-Length {length} is negative")
    if length > MAX_BODY_BYTES:
        raise RequestError(
            413, f"the body has {length} bytes; at most {MAX_BODY_BYTES} are accepted"
        )
    try:
        return environ["wsgi.input"].read(length) if length else b""
    except TimeoutError:
        raise RequestError(408, f"the body did not arrive within {REQUEST_TIMEOUT_S} s") from None


# ---------------------------------------------------------------------- the app
class AnnotationApp:
    """WSGI app that shows the selected frames of a dataset and stores the clicks made on them.

    Args:
        dataset: the dataset to annotate.
        count: how many frames to annotate; the store's selection (kept across runs, so
            positions are stable) is chosen or extended to this many.
        seed: seed of a new selection.
        annotator: name stored with every new click.
        suggest: choose new frames by coverage of the dataset (greedy k-center,
            ``AnnotationStore.plan_selection``), the most informative first; once a
            predictor exists, new frames and the order of the frames without clicks go by
            where it is least sure (``saliency.uncertainty``).
        loopback_only: refuse requests whose Host header does not name this machine
            (set when the server listens on a loopback address).
        predictor: a predictor checkpoint whose maps the page shows from the start.
        refit: when and how to refit the predictor on the annotated frames
            (``LivePredictor``); the default refits every 5 newly annotated frames.
    """

    def __init__(
        self,
        dataset: Dataset,
        count: int,
        *,
        seed: int = 0,
        annotator: str | None = None,
        suggest: bool = False,
        loopback_only: bool = True,
        predictor: str | Path | None = None,
        refit: RefitConfig | None = None,
    ) -> None:
        if "rgb" not in dataset.fields:
            raise DatasetError(f"dataset {dataset.root} has no rgb field: there is nothing to show")
        self.dataset = dataset
        self.store = AnnotationStore(dataset)
        self.annotator = _check_annotator(annotator or default_annotator())
        self.live = LivePredictor(dataset, predictor, refit)
        self.suggest = suggest
        _, start = self.live.current()
        uncertainty = uncertainty_of(start, dataset) if suggest and start is not None else None
        self.frames = self.store.select(count, seed, suggest, uncertainty)
        self.height, self.width = dataset.image_size
        self.sigma = click_sigma(self.height, self.width)
        self.loopback_only = loopback_only
        # The dataset's episode cache and the read-modify-write of PUT are not thread-safe.
        self._lock = threading.Lock()
        self._png: dict[int, bytes] = {}
        # Maps of the current predictor, uint8 (H, W) per position; emptied on a new one.
        self._maps: dict[int, np.ndarray] = {}
        self._maps_version = 0
        self._maps_lock = threading.Lock()
        self.live.annotated_changed(len(self.store.annotated()))
        static = resources.files("saliency_rl.saliency.web") / "static"
        self._static = {
            route: ((static / name).read_bytes(), kind) for route, (name, kind) in _STATIC.items()
        }

    def __call__(self, environ: dict, start_response: Callable) -> list[bytes]:
        try:
            self._check_host(environ)
            status, headers, body = self._route(environ)
        except RequestError as error:
            status, headers, body = _json(error.status, {"error": error.message})
            headers += error.headers
        except Exception as error:  # answer, and leave the traceback for whoever runs the server
            traceback.print_exc(file=sys.stderr)
            status, headers, body = _json(500, {"error": f"internal error: {error}"})
        phrase = HTTPStatus(status).phrase
        start_response(
            f"{status} {phrase}",
            headers + _SECURITY_HEADERS + [("Content-Length", str(len(body)))],
        )
        return [body]

    # ------------------------------------------------------------------ routing
    def _check_host(self, environ: dict) -> None:
        host = environ.get("HTTP_HOST")
        if not self.loopback_only or host is None:
            return
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if name.strip("[]").lower() not in _LOOPBACK_NAMES:
            raise RequestError(
                403, f"Host {host!r} is not this machine; open the page at http://127.0.0.1:PORT/"
            )

    def _route(self, environ: dict) -> Response:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "") or "/"
        if path in self._static:
            _allow(method, "GET")
            body, kind = self._static[path]
            return 200, [("Content-Type", kind)], body
        if path == "/api/state":
            _allow(method, "GET")
            return _json(200, self.state())
        match = _FRAME_ROUTE.fullmatch(path)
        if match is None:
            raise RequestError(404, f"no such page: {path}")
        position, what = self._position(match.group(1)), match.group(2)
        if what == "image.png":
            _allow(method, "GET")
            return 200, [("Content-Type", "image/png")], self.image_png(position)
        if what == "prediction.png":
            _allow(method, "GET")
            version, saliency = self.prediction(position)
            headers = [("Content-Type", "image/png"), ("X-Predictor-Version", str(version))]
            return 200, headers, _encode_png(saliency[None])
        if what == "suggested_clicks":
            _allow(method, "GET")
            return _json(200, self.suggested_clicks(position))
        _allow(method, "GET", "PUT")
        if method == "GET":
            return _json(200, self.frame_record(position))
        kind = environ.get("CONTENT_TYPE", "")
        if kind.split(";")[0].strip().lower() != "application/json":
            raise RequestError(415, f"send the clicks as application/json, not {kind or 'nothing'}")
        points = parse_clicks(_read_body(environ), self.height, self.width)
        return _json(200, self.put_clicks(position, points))

    def _position(self, text: str) -> int:
        position = int(text)
        if position >= len(self.frames):
            raise RequestError(
                404,
                f"frame position {position} does not exist: {len(self.frames)} frames are "
                f"being annotated (0..{len(self.frames) - 1})",
            )
        return position

    # ------------------------------------------------------------------ answers
    def state(self) -> dict:
        """What the page needs to start: the selection with done flags and where to resume."""
        with self._lock:
            counts = [len(self.store.clicks(f)) for f in self.frames]
            located = [self.dataset.locate(f) for f in self.frames]
        done = [n > 0 for n in counts]
        order = walk_order(done, self._uncertainty() if self.suggest else None)
        return {
            "dataset": self.dataset.root.name,
            "env_spec": self.dataset.env_spec,
            "image_size": [self.height, self.width],
            "sigma": self.sigma,
            "annotator": self.annotator,
            "max_clicks": MAX_CLICKS,
            "frames": [
                {"frame": f, "episode": e, "step": s, "clicks": n}
                for f, (e, s), n in zip(self.frames, located, counts, strict=True)
            ],
            "done": sum(done),
            "total": len(self.frames),
            "order": order,
            # Reopening resumes at the first frame without clicks (the first, when all are done).
            "resume": next((k for k in order if not done[k]), order[0]),
            "predictor": self.live.status(),
        }

    def frame_record(self, position: int) -> dict:
        """The stored clicks of the frame at ``position``, with its global index."""
        frame = self.frames[position]
        with self._lock:
            clicks = self.store.clicks(frame)
        return {"position": position, "frame": frame, "clicks": [asdict(c) for c in clicks]}

    def image_png(self, position: int) -> bytes:
        """The frame at ``position`` as PNG bytes at its stored resolution."""
        with self._lock:
            if position not in self._png:
                rgb = self.dataset.frame(self.frames[position], ["rgb"])["rgb"]  # (C, H, W)
                self._png[position] = _encode_png(rgb)
            return self._png[position]

    def put_clicks(self, position: int, points: list[tuple[float, float]]) -> dict:
        """Store ``points`` as the clicks of the frame at ``position``; return the new record.

        A point equal to one already stored keeps that click's sigma, annotator and time, so
        undoing the last click does not re-date (or re-attribute) the others.
        """
        frame = self.frames[position]
        with self._lock:
            old = {(c.x, c.y): c for c in self.store.clicks(frame)}
            stamp = now()
            clicks = [
                old.pop((x, y), None) or Click(x, y, self.sigma, self.annotator, stamp)
                for x, y in points
            ]
            # A frame the person cleared is not annotated: it trains nothing downstream.
            if clicks:
                self.store.save(frame, clicks)
            else:
                self.store.delete(frame)
            done = sum(bool(self.store.clicks(f)) for f in self.frames)
            annotated = len(self.store.annotated())
        self.live.annotated_changed(annotated)
        record = self.frame_record(position)
        record.update(done=done, total=len(self.frames), predictor=self.live.status())
        return record

    # ------------------------------------------------------------------ the predictor
    def _predict(self, positions: list[int]) -> tuple[int, dict[int, np.ndarray]]:
        """(version, {position: uint8 map}) of the current predictor; RequestError (404)
        when there is none yet."""
        version, predictor = self.live.current()
        if predictor is None:
            every = self.live.refit.every
            when = (
                f"one is fitted after {every} frames are annotated" if every else "refits are off"
            )
            raise RequestError(
                404,
                f"there is no saliency predictor yet ({when}); give one with "
                "`annotate --predictor CKPT`",
            )
        with self._maps_lock:
            if version != self._maps_version:
                self._maps, self._maps_version = {}, version
            missing = [k for k in positions if k not in self._maps]
            if missing:
                with self._lock:
                    rgb = self.dataset.frames([self.frames[k] for k in missing], ["rgb"])["rgb"]
                maps = predictor.predict_uint8(rgb)  # (n, H, W)
                self._maps.update(zip(missing, maps, strict=True))
            return version, {k: self._maps[k] for k in positions}

    def prediction(self, position: int) -> tuple[int, np.ndarray]:
        """(version, uint8 (H, W) map) of the current predictor on the frame at ``position``."""
        version, maps = self._predict([position])
        return version, maps[position]

    def suggested_clicks(self, position: int) -> dict:
        """The current predictor's map of a frame as clicks (``clicks_from_map``); stores
        nothing: the page sends them back with PUT if the person accepts them."""
        version, saliency = self.prediction(position)
        points = clicks_from_map(saliency.astype(np.float32) / 255.0, self.sigma)
        return {
            "position": position,
            "frame": self.frames[position],
            "version": version,
            "threshold": SUGGEST_THRESHOLD,
            "clicks": [{"x": x, "y": y} for x, y in points],
        }

    def _uncertainty(self) -> list[float] | None:
        """Mean entropy of the current predictor's map of each position; None without one."""
        if self.live.current()[1] is None:
            return None
        try:
            _, maps = self._predict(list(range(len(self.frames))))
        except RequestError:  # the predictor went away meanwhile: coverage order
            return None
        stacked = np.stack([maps[k] for k in range(len(self.frames))]).astype(np.float32)
        return map_entropy(stacked / 255.0).tolist()


def _allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise RequestError(
            405,
            f"method {method} is not allowed here; use {' or '.join(allowed)}",
            [("Allow", ", ".join(allowed))],
        )


def _json(status: int, obj: Any) -> Response:
    return status, [("Content-Type", "application/json")], json.dumps(obj).encode()


def _encode_png(rgb: np.ndarray) -> bytes:
    """(C, H, W) uint8 with C = 1 or 3 -> PNG bytes."""
    image = rgb[0] if rgb.shape[0] == 1 else rgb[:3].transpose(1, 2, 0)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG")
    return buffer.getvalue()


# ---------------------------------------------------------------------- the server
class _QuietHandler(WSGIRequestHandler):
    """Logs refused and failed requests only; the page's saves would drown everything else."""

    timeout = REQUEST_TIMEOUT_S

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if str(code).isdigit() and int(code) >= 400:
            super().log_request(code, size)


class AnnotationServer(socketserver.ThreadingMixIn, WSGIServer):
    """A threading WSGI server for one ``AnnotationApp``; ``url`` is where to open the page."""

    daemon_threads = True
    _thread: threading.Thread | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A connection that sends nothing until REQUEST_TIMEOUT_S (a browser's pre-opened
        # socket) or that the browser drops is routine: no traceback for the person annotating.
        if isinstance(sys.exc_info()[1], (TimeoutError, ConnectionError)):
            return
        super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        if host in ("0.0.0.0", "::"):  # listening everywhere: this machine is one of them
            host = "127.0.0.1"
        return f"http://[{host}]:{port}/" if ":" in str(host) else f"http://{host}:{port}/"

    def start(self) -> AnnotationServer:
        """Serve in a daemon thread and return at once (for tests and notebooks)."""
        self._thread = threading.Thread(target=self.serve_forever, name="annotation-server")
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and wait for the thread started by ``start``."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        self.server_close()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _AnnotationServer6(AnnotationServer):
    address_family = socket.AF_INET6


def make_server(
    dataset_path: str | Path,
    count: int = 10,
    *,
    seed: int = 0,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    annotator: str | None = None,
    suggest: bool = False,
    predictor: str | Path | None = None,
    refit: RefitConfig | None = None,
) -> AnnotationServer:
    """Open the dataset, choose the frames and bind the server (it does not serve yet).

    Args:
        dataset_path: the dataset directory.
        count: frames to annotate (the earlier selection is kept and extended).
        seed: seed of a new selection.
        host: address to listen on; 127.0.0.1 keeps the page to this machine.
        port: TCP port; 0 picks a free one (read it back from ``server.url``).
        annotator: name stored with the clicks; the login name when None.
        suggest: choose new frames by coverage, then by the predictor's uncertainty
            (``AnnotationApp``).
        predictor: a predictor checkpoint whose maps the page offers from the start.
        refit: when and how to refit the predictor (``RefitConfig``; every 5 frames).
    """
    if not 0 <= port <= 65535:
        raise SaliencyRLError(f"port {port} is not valid: give 1 to 65535, or 0 for any free port")
    dataset = Dataset.open(dataset_path)
    loopback = _is_loopback(host)
    app = AnnotationApp(
        dataset,
        count,
        seed=seed,
        annotator=annotator,
        suggest=suggest,
        loopback_only=loopback,
        predictor=predictor,
        refit=refit,
    )
    server_class = _AnnotationServer6 if ":" in host else AnnotationServer
    try:
        server = server_class((host, port), _QuietHandler)
    except OSError as error:
        hint = " (choose another with --port, or --port 0 for any free port)" if port else ""
        raise SaliencyRLError(f"cannot listen on {host}:{port}: {error.strerror}{hint}") from None
    server.set_app(app)
    return server


def start_server(dataset_path: str | Path, count: int = 10, **options: Any) -> AnnotationServer:
    """``make_server`` (port 0 by default) serving in a background thread; call ``stop()`` after.

    Usable as a context manager: ``with start_server(path, 3) as server: ... server.url``.
    """
    options.setdefault("port", 0)
    return make_server(dataset_path, count, **options).start()


def serve_annotation(dataset_path: str | Path, count: int = 10, **options: Any) -> int:
    """Serve the annotation page, print its address, and return at Ctrl-C.

    Arguments as ``make_server`` (``seed``, ``host``, ``port``, ``annotator``, ``suggest``,
    ``predictor``, ``refit``). Every click
    is saved as it is made, so stopping loses nothing. Returns the number of selected frames
    that have clicks.
    """
    server = make_server(dataset_path, count, **options)
    app: AnnotationApp = server.get_app()  # type: ignore[assignment]
    state = app.state()
    print(
        f"annotating {state['total']} frames of {app.dataset.root} as {app.annotator!r} "
        f"({state['done']} done); open {server.url}  (Ctrl-C to stop)",
        flush=True,
    )
    predictor = state["predictor"]
    if predictor["available"] or predictor["refit_every"]:
        shown = (
            f"showing the maps of a predictor ({predictor['source']})"
            if predictor["available"]
            else "no predictor yet"
        )
        every = predictor["refit_every"]
        refits = (
            f"refitted every {every} newly annotated frames into {app.live.live_dir}"
            if every
            else "never refitted"
        )
        print(f"{shown}, {refits}", flush=True)
    if not app.loopback_only:
        print(
            f"warning: listening on {server.server_address[0]}: anyone who can reach this machine can change the "
            "annotations",
            file=sys.stderr,
            flush=True,
        )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return app.state()["done"]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
