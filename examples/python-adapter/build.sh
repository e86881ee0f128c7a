#!/bin/sh
# Builds pyinbox.wasm from app.py with componentize-py, which this script
# installs (from PyPI, pinned) into a virtual environment under target/.
# Needs python3 with venv and pip.
#
#   examples/python-adapter/build.sh [OUT.wasm]
#
# OUT defaults to target/python-adapter/pyinbox.wasm.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/target/python-adapter/pyinbox.wasm}
venv=${AIRLOCK_PYTHON_VENV:-$root/target/python}
version=0.25.1

if ! "$venv/bin/componentize-py" --version 2>/dev/null | grep -q " $version\$"; then
  echo "build.sh: installing componentize-py $version into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$version"
fi
mkdir -p "$(dirname "$out")"
# --stub-wasi: the component imports no WASI interface (the host grants it
# none); Python's standard library runs on stubs that fail when called.
"$venv/bin/componentize-py" -d "$root/wit" -w inbound-adapter \
  componentize -p "$here" app --stub-wasi -o "$out" >&2
echo "$out"
