"""Helpers for the bad-input and interruption tests (issue 21), imported by name
(``from robustness_helpers import ...``: a module name no other test folder uses).

Each test in this folder hashes the dataset or run directory before and after a command
that must fail (or must change nothing), and checks the exit code and the one-line message.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def tree_digest(root: str | Path) -> dict[str, tuple[str, int]]:
    """Every file under ``root`` (relative path) mapped to (sha256 of its bytes, its mtime in ns).

    Two digests are equal only when no file was added, removed, changed or rewritten: a file
    rewritten with the same bytes still changes its mtime.
    """
    root = Path(root)
    digest = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            digest[str(path.relative_to(root))] = (
                hashlib.sha256(data).hexdigest(),
                os.stat(path).st_mtime_ns,
            )
    return digest


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """Run ``saliency-rl argv`` in-process; (exit code, stderr + stdout)."""
    from saliency_rl.cli import main

    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.err + captured.out
