"""The click-annotation web page: a local server and the static page it ships.

``serve_annotation(dataset, count)`` serves until Ctrl-C (``saliency-rl annotate DATASET``);
``start_server(dataset, count)`` serves in a background thread, for tests and notebooks.
"""

from saliency_rl.saliency.web.server import (
    AnnotationApp,
    AnnotationServer,
    make_server,
    serve_annotation,
    start_server,
)

__all__ = ["AnnotationApp", "AnnotationServer", "make_server", "serve_annotation", "start_server"]
