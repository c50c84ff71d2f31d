# braid-worker: a tenant's local trainer (LibTorch). The same image runs
# `braid-worker init` (writes a job's initial weights) and the training loop;
# the operator picks which with the container's args.
#
#   docker build -f docker/worker.Dockerfile -t braid-worker:0.1.0 .
#
# Build context: the repository root (.dockerignore keeps build trees out).
# tests/images/dockerfiles_test.sh checks this file against the CMake build:
# the build stage installs scripts/deps.sh's packages (less those the CMake
# options below make unneeded), every COPY --from=build names a CMake
# target, and the runtime stage installs the package of every shared library
# the program loads.

# --- build --------------------------------------------------------------------
FROM debian:bookworm AS build
# scripts/deps.sh's list, without the packages only tests use
# (BRAID_BUILD_TESTS=OFF).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config python3 \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
      libtorch-dev libyaml-cpp-dev prometheus-cpp-dev nlohmann-json3-dev \
      libcurl4-openssl-dev libssl-dev libabsl-dev libsodium-dev libsentencepiece-dev \
      libcpp-httplib-dev libpcre2-dev libutf8proc-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B build -G Ninja \
      -DBRAID_BUILD_TESTS=OFF -DBRAID_BUILD_BENCH=OFF \
 && cmake --build build --target braid-worker --target libbraid_sentencepiece.so

# --- runtime ------------------------------------------------------------------
FROM debian:bookworm-slim
# The Debian packages of the shared libraries braid-worker loads (ldd);
# libc6 and libgcc-s1 are part of the base image. libtorch1.13 brings its
# own dependencies (BLAS, OpenMP, ...) with it; libopenblas0-openmp replaces
# Debian's reference BLAS with OpenBLAS (LoRA training ~5x faster,
# docs/benchmarks.md (e)).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libabsl20220623 libgrpc++1.51 libgrpc29 libprotobuf32 libyaml-cpp0.7 \
      libtorch1.13 libssl3 libsentencepiece0 libstdc++6 \
      libsodium23 libpcre2-8-0 libutf8proc2 libopenblas0-openmp \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/bin/braid-worker /usr/local/bin/braid-worker
# SentencePiece tokenizers load from a plugin beside the program.
COPY --from=build /src/build/bin/libbraid_sentencepiece.so /usr/local/bin/libbraid_sentencepiece.so
# Data and the job's model files come from volumes the operator mounts.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/braid-worker"]
