#!/usr/bin/env bash
# The Python interpreter of Flower's reference stack: a venv with
# scripts/flower-requirements.txt (flwr and its pinned dependencies, from
# PyPI), cached outside the repo per hash of that file. Prints the
# interpreter's path as the last line of stdout; idempotent, fast when built.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
req="$here/flower-requirements.txt"
key=$(sha256sum "$req" | cut -c1-16)
root="${XDG_CACHE_HOME:-$HOME/.cache}/braid/flower/$key"
if [[ -x "$root/bin/python" && -f "$root/.ok" ]]; then
  echo "$root/bin/python"
  exit 0
fi
mkdir -p "$(dirname "$root")"
# Concurrent callers (tests in parallel) serialize; the second finds it made.
exec 9>"$root.lock"
flock 9
if [[ -x "$root/bin/python" && -f "$root/.ok" ]]; then
  echo "$root/bin/python"
  exit 0
fi
bash "$here/deps.sh" >&2
rm -rf "$root"
/usr/bin/python3 -m venv "$root" >&2
"$root/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$req" >&2
"$root/bin/python" - >&2 <<'PY'
import flwr
from flwr.server.strategy import FedAdagrad, FedAdam, FedAvgM, FedYogi  # noqa: F401
print(f"flower-ref: flwr {flwr.__version__}")
PY
touch "$root/.ok"
echo "$root/bin/python"
