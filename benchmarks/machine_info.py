"""What every results file records about the machine: the CPU's model name and package versions.

The benchmark scripts run as ``python benchmarks/NAME.py``, so they import this module by its
bare name (their folder is first on ``sys.path``).
"""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (platform's guess where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def package_versions(names: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Installed version of each package; one that is not installed is left out."""
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found
