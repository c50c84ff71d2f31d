#!/usr/bin/env bash
# Builds the LLM example's base model once and copies it where
# examples/llm-lora.yaml looks for it (examples/models/tiny-llama: inside the
# job's folder, since a job's local paths may not lead out of it, links
# included; the copy is 0.6 MB).
#
# The folder is cached under ~/.cache/braid/models/tiny-llama-<hash>, the
# hash covering the scripts that make it (so editing them makes a new one);
# it is made by examples/models/make_tiny_llama.py in the venv of
# scripts/pyref.sh (pretraining on text generated in the repo: nothing is
# downloaded). Prints the folder. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
inputs=(examples/models/make_tiny_llama.py examples/data/llm_domains.py scripts/pyref-requirements.txt)
hash=$(cat "${inputs[@]}" | sha256sum | cut -c1-16)
cache="${BRAID_CACHE:-$HOME/.cache/braid}/models"
folder="$cache/tiny-llama-$hash"
if [[ ! -f "$folder/model.safetensors" ]]; then
  py=$(bash scripts/pyref.sh)
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/.tiny-llama-XXXXXX")
  echo "building the demo base model (once) into $folder" >&2
  "$py" examples/models/make_tiny_llama.py "$tmp" >&2
  rm -rf "$folder" && mv "$tmp" "$folder"
fi
link=examples/models/tiny-llama
if [[ -L "$link" || "$(cat "$link/.source" 2>/dev/null)" != "$hash" ]]; then
  rm -rf "$link"
  tmp=$(mktemp -d examples/models/.tiny-llama-XXXXXX)
  chmod 755 "$tmp"
  cp -R "$folder/." "$tmp/"
  echo "$hash" > "$tmp/.source"
  mv "$tmp" "$link"
fi
echo "$folder"
