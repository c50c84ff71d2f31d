#!/usr/bin/env bash
# Prints the path of a Python interpreter that has the reference stack
# (Hugging Face transformers/tokenizers/peft, Google's dp-accounting) over
# Debian's python3-torch, building the venv once under the user's cache:
#   ~/.cache/braid/pyref/<hash of scripts/pyref-requirements.txt>/
# Idempotent: a cached venv costs one stat. On failure it prints why on
# stderr and exits non-zero; tests that need the stack fail with that text.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
req="$here/pyref-requirements.txt"
key=$(sha256sum "$req" | cut -c1-16)
root="${XDG_CACHE_HOME:-$HOME/.cache}/braid/pyref/$key"
if [[ -x "$root/bin/python" && -f "$root/.ok" ]]; then
  echo "$root/bin/python"
  exit 0
fi
bash "$here/deps.sh" >&2
rm -rf "$root"
mkdir -p "$(dirname "$root")"
/usr/bin/python3 -m venv --system-site-packages "$root" >&2
"$root/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$req" >&2
"$root/bin/python" - >&2 <<'PY'
import torch, transformers, tokenizers, peft, dp_accounting, sentencepiece, safetensors
assert torch.__version__.startswith("1.13"), f"expected Debian's torch 1.13, got {torch.__version__}"
print(f"pyref: torch {torch.__version__}, transformers {transformers.__version__}, "
      f"peft {peft.__version__}, dp-accounting ready")
PY
touch "$root/.ok"
echo "$root/bin/python"
