#!/usr/bin/env bash
# Create .venv and install saliency-rl with every simulator and the test tools.
#
# torch comes first and on its own: with no torch present, letting pip resolve
# "torch" as a dependency would fetch the newest CUDA build (several GB) even on
# a CPU machine. A torch already in the venv is kept as it is.
# Re-running is cheap: nothing is reinstalled unless pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment in $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"

if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  echo "[setup] installing torch==$TORCH_VERSION (CPU wheel on a CPU machine)"
  # On CPU-only machines outside this workplace, point pip at the CPU index, e.g.
  #   PIP_INDEX_URL=https://download.pytorch.org/whl/cpu scripts/setup.sh
  "$PY" -m pip install --quiet "torch==$TORCH_VERSION" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
  "$PY" -c "import torch" || { echo "[setup] torch could not be installed" >&2; exit 1; }
fi

stamp="$VENV/.saliency-rl-installed"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing saliency-rl and simulators (mujoco 3.3.0, dm-control 1.0.28, metaworld 3.1.1, ale-py)"
  "$PY" -m pip install --quiet -e ".[all,dev]" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
  "$PY" -c "import saliency_rl, torch, mujoco, dm_control, metaworld, ale_py" \
    || { echo "[setup] installation failed: see the pip output above" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
# The browser tests drive Debian's chromium (Playwright's own browser download does not
# work offline). Installed when we may; otherwise those tests skip and say why.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
   && [ -z "${SALIENCY_RL_NO_APT:-}" ]; then
  echo "[setup] installing Debian's chromium for the browser tests"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "[setup] chromium could not be installed: the browser tests will be skipped"
fi
"$PY" -c "import torch; print('[setup] ready: torch', torch.__version__)"
