"""What the benchmark scripts do with a run folder left by a job killed before its first
checkpoint.

Such a folder has nothing to resume from, and a new run refuses a non-empty folder. It is kept
aside under a new name (never deleted: its logs say why the job died) and the run starts again.
"""

from __future__ import annotations

import time
from pathlib import Path


def set_aside_unstarted(path: Path) -> Path:
    """Rename ``path`` to ``NAME.no-checkpoint-<ns>`` beside it and return the new path."""
    aside = path.with_name(f"{path.name}.no-checkpoint-{time.time_ns()}")
    path.rename(aside)
    print(f"kept aside (no checkpoint to resume from): {aside}", flush=True)
    return aside
