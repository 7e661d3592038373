"""``saliency-rl demo``: the pipeline as far as it exists, on a small default task.

Today: collect frames with a random policy -> oracle-annotate a few -> turn the clicks into
saliency maps -> save a preview of the maps over their frames. Later stages (predictor,
labelling, MultiMAE, SAC, evaluation, report) join as they land.
"""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path

from saliency_rl import __version__
from saliency_rl.data.atomic import atomic_write_json
from saliency_rl.data.collect import collect
from saliency_rl.saliency.annotations import AnnotationStore, annotate_with_oracle
from saliency_rl.saliency.overlay import overlay, save_grid


def run_demo(
    out: str | Path | None = None,
    *,
    env_spec: str = "dmc:cartpole-swingup",
    episodes: int = 2,
    annotate_frames: int = 10,
    seed: int = 0,
) -> Path:
    """Run the demo into ``out`` (default ``runs/demo_<time>``) and return the preview PNG's path."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(out) if out else Path("runs") / f"demo_{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "env_spec": env_spec,
        "episodes": episodes,
        "annotate_frames": annotate_frames,
        "seed": seed,
        "package_version": __version__,
    }
    atomic_write_json(out / "config.json", config)
    started = time.time()

    print(f"[1/3] collecting {episodes} episodes of {env_spec} with a random policy")
    dataset = collect(env_spec, out / "dataset", episodes=episodes, seed=seed)
    print(f"[2/3] oracle-annotating {annotate_frames} frames")
    frames = annotate_with_oracle(dataset, annotate_frames, seed=seed)
    print("[3/3] drawing the saliency maps over their frames")
    store = AnnotationStore(dataset)
    tiles = [overlay(dataset.frame(f, ["rgb"])["rgb"], store.saliency_map(f)) for f in frames]
    preview = out / "saliency_preview.png"
    save_grid(preview, tiles)
    summary = {
        **config,
        "frames": dataset.num_frames,
        "annotated": frames,
        "seconds": round(time.time() - started, 1),
    }
    atomic_write_json(out / "summary.json", summary)
    print(json.dumps({"dataset": str(out / "dataset"), "preview": str(preview)}, indent=2))
    print(f"done in {summary['seconds']} s: saliency maps of the annotated frames are in {preview}")
    return preview
