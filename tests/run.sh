#!/usr/bin/env bash
# The test command: unit and integration tests, then the Gateway API (and
# Istio) conformance cases from ../shared/conformance when that folder exists.
# Set WEIR_SHARED to point elsewhere.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
tests/install-build-deps.sh

cargo build --workspace --bins
cargo test --workspace

shared=${WEIR_SHARED:-$repo/../shared}
cases=()
[ -d "$shared/conformance/cases" ] && cases+=(--cases "$shared/conformance/cases")
[ -d "$shared/conformance/istio" ] && cases+=(--cases "$shared/conformance/istio")
if [ ${#cases[@]} -eq 0 ]; then
  echo "conformance: $shared/conformance is absent; the conformance cases were NOT run." >&2
  exit 0
fi
"${CARGO_TARGET_DIR:-target}"/debug/weir-conformance run "${cases[@]}" \
  --report "${CARGO_TARGET_DIR:-target}"/conformance-report.yaml
