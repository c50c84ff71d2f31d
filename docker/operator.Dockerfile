# braid-operator: the Kubernetes operator (the FederatedJob controller, which
# also reads Tenants and TenantApprovals) and its optional dashboard.
#
#   docker build -f docker/operator.Dockerfile -t braid-operator:0.1.0 .
#
# Build context: the repository root (.dockerignore keeps build trees out).
# tests/images/dockerfiles_test.sh checks this file against the CMake build:
# the build stage installs scripts/deps.sh's packages (less those the CMake
# options below make unneeded), every COPY --from=build names a CMake
# target, and the runtime stage installs the package of every shared library
# the program loads.

# --- build --------------------------------------------------------------------
FROM debian:bookworm AS build
# scripts/deps.sh's list, without libtorch-dev (BRAID_WITH_TORCH=OFF) and
# the packages only tests use (BRAID_BUILD_TESTS=OFF).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config python3 \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
      libyaml-cpp-dev prometheus-cpp-dev nlohmann-json3-dev \
      libcurl4-openssl-dev libssl-dev libabsl-dev libsodium-dev libsentencepiece-dev \
      libcpp-httplib-dev libpcre2-dev libutf8proc-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B build -G Ninja \
      -DBRAID_BUILD_TESTS=OFF -DBRAID_BUILD_BENCH=OFF -DBRAID_WITH_TORCH=OFF \
 && cmake --build build --target braid-operator

# --- runtime ------------------------------------------------------------------
FROM debian:bookworm-slim
# The Debian packages of the shared libraries braid-operator loads (ldd;
# cpp-httplib and OpenSSL for the dashboard, libsodium for the audit
# trail's anchors);
# libc6 and libgcc-s1 are part of the base image.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libabsl20220623 libgrpc++1.51 libgrpc29 libprotobuf32 libyaml-cpp0.7 \
      libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 libcurl4 libstdc++6 \
      libcpp-httplib0.11 libssl3 libsodium23 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/bin/braid-operator /usr/local/bin/braid-operator
# The chart runs it as 65532 too, with a read-only root filesystem.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/braid-operator"]
