#!/usr/bin/env bash
# Creates (or reuses) the project's three virtual environments from the locks:
#   .venvs/tools    pinned uv, made with the system Python's venv + pip
#   .venvs/airflow  Airflow + Cosmos + providers + test tools  (requirements/dev.lock.txt)
#   .venvs/dbt      dbt-core + dbt-postgres, never mixed with Airflow (dbt/requirements.lock.txt)
# A venv is rebuilt only when its lock changed, so a second run takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
fail() { printf 'error: %s\n' "$*" >&2; exit 1; }

find_python() {
  local candidate
  for candidate in "${PYTHON:-}" python3.12 python3.11 python3; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info[:2] not in ((3, 11), (3, 12)))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

python_bin=$(find_python) || fail "Python 3.11 or 3.12 with the venv and ensurepip modules is required, and none was found on PATH.
  Install one (Debian/Ubuntu: apt-get install python3 python3-venv; macOS: brew install python@3.12),
  or point PYTHON at it: make run PYTHON=/path/to/python3.12"

# The lock and the Python both decide a venv's contents, so both go into its stamp.
stamp_of() { { cat "$1"; "$python_bin" -c 'import sys; print(sys.version)'; } | sha256sum | cut -c1-16; }

if [ ! -x .venvs/tools/bin/uv ] || [ "$(.venvs/tools/bin/uv --version 2>/dev/null | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  echo "bootstrap: installing uv $UV_VERSION into .venvs/tools"
  "$python_bin" -m venv --clear .venvs/tools
  .venvs/tools/bin/pip install --quiet --disable-pip-version-check "uv==$UV_VERSION" \
    || fail "could not install uv from PyPI. Check your network or proxy (pip must reach PyPI)."
fi
uv=.venvs/tools/bin/uv

sync_venv() {
  local name=$1 lock=$2 venv=.venvs/$1 stamp
  stamp=$(stamp_of "$lock")
  if [ -f "$venv/.lock-stamp" ] && [ "$(cat "$venv/.lock-stamp")" = "$stamp" ]; then
    return 0
  fi
  echo "bootstrap: building .venvs/$name from $lock"
  "$uv" venv --quiet --allow-existing --python "$python_bin" "$venv"
  "$uv" pip sync --quiet --python "$venv/bin/python" "$lock" \
    || fail "could not install $lock into $venv (see the uv output above)."
  # Byte-compile once: these machines set PYTHONDONTWRITEBYTECODE, and every dbt and Airflow
  # process would otherwise recompile its imports (measured: 62 s -> 45 s for a Cosmos DAG run).
  "$venv/bin/python" -m compileall -q -j 0 "$venv/lib" >/dev/null 2>&1 || true
  echo "$stamp" >"$venv/.lock-stamp"
}

sync_venv airflow requirements/dev.lock.txt
sync_venv dbt dbt/requirements.lock.txt
