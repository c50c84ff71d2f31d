#!/usr/bin/env bash
# Installs every build and test dependency of Braid from Debian's packages.
# Idempotent: when every package is already installed it costs one dpkg query.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config python3
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libtorch-dev libyaml-cpp-dev prometheus-cpp-dev nlohmann-json3-dev
  libcurl4-openssl-dev libssl-dev libabsl-dev libgtest-dev libgmock-dev libsodium-dev
  curl openssl  # the k8s tests: cluster certificates, metrics scrapes
  python3-torch python3-venv python3-numpy python3-jinja2  # the reference stack (scripts/pyref.sh)
  libsentencepiece-dev ccache
  clang libclang-rt-14-dev  # make sanitize / make fuzz (ASan, UBSan, libFuzzer)
  libcpp-httplib-dev  # the dashboard's HTTP server (braid run --dashboard)
  chromium            # the browser tests (playwright-core drives /usr/bin/chromium)
  libpcre2-dev libutf8proc-dev  # tokenizers: pre-tokenizer regexes, NFC
  # LibTorch and python3-torch call the libblas.so.3 alternative for every
  # matmul; without this it is the reference BLAS, ~5x slower LLM training.
  libopenblas0-openmp
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
((${#missing[@]})) || exit 0

echo "deps: installing ${missing[*]}"
sudo_cmd=()
[[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
