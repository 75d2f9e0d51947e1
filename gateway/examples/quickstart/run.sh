#!/usr/bin/env bash
# Runs weir-gateway on this folder, with an echo backend behind it.
#   curl -H 'Host: echo.example.com' http://127.0.0.1:8080/hello
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
"$repo/tests/install-build-deps.sh"
cd "$repo"
cargo build --release --bin weir-gateway --bin weir-echo
bin="${CARGO_TARGET_DIR:-target}/release"
"$bin"/weir-echo --namespace demo --pod echo-0-quickstart --service echo \
  --http 127.0.0.1:3000 --control 127.0.0.1:3099 >/dev/null &
echo_pid=$!
trap 'kill $echo_pid 2>/dev/null || true' EXIT
echo "weir-gateway: http://127.0.0.1:8080 (Host: echo.example.com), admin http://127.0.0.1:15000/status"
"$bin"/weir-gateway --config-dir "$here" --admin-address 127.0.0.1:15000 --address-pool 127.0.0.1/32
