#!/usr/bin/env bash
# Copies the CRDs (crds/, the source of truth) into the Helm chart, which installs them from charts/braid/crds/; tests/helm/chart_test.sh fails while they differ.
set -euo pipefail; cd "$(dirname "$0")/.." && rm -f charts/braid/crds/*.yaml && cp crds/*.yaml charts/braid/crds/
