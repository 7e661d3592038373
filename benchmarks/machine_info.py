"""What every results file records about the machine: the CPU's model name and package versions.

The benchmark scripts run as ``python benchmarks/NAME.py``, so they import this module by its
bare name (their folder is first on ``sys.path``).
"""

from __future__ import annotations

import datetime
import os
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


VERSIONS = ("torch", "numpy", "dm-control", "mujoco")


def provenance(command: str) -> dict:
    """What a results file records beside its numbers: machine, date, load, versions and the
    command that reproduces them (the machine is shared, so the load says how busy it was)."""
    return {
        "machine": cpu_model(),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "load_average": round(os.getloadavg()[0], 2),
        "versions": package_versions(VERSIONS),
        "command": command,
    }


def measured_line(results: dict) -> str:
    """The results file's first line: when, where, how busy, which versions, what command."""
    return (
        f"Measured {results['date']} on {results['machine']}, 1 torch thread, load average "
        f"{results['load_average']} (other benchmarks ran beside it); versions "
        f"{results['versions']}. Command: `{results['command']}`."
    )
