#!/usr/bin/env bash
# Benchmark: Weir vs nginx (Debian's) as reverse proxies on loopback.
#
# Same backend for both (an nginx instance answering a fixed 200), one worker
# each, HTTP/1.1 keep-alive to the client and to the backend, load from wrk.
# Prints each proxy's req/s and p99 latency, and Weir's ratios to nginx's.
#   tests/bench/proxy-vs-nginx.sh [DURATION_SECONDS] [CONNECTIONS]
set -euo pipefail
duration=${1:-10}
connections=${2:-50}
repo=$(cd "$(dirname "$0")/../.." && pwd)
"$repo/tests/install-build-deps.sh" nginx wrk
cd "$repo"
cargo build --release --bin weir-gateway >&2

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

backend_port=18090 nginx_port=18081 weir_port=18080 admin_port=18099

# --- backend: nginx answering 200 with a small body -----------------------
mkdir -p "$work/backend" "$work/nginx"
cat > "$work/backend/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/backend/nginx.pid;
error_log $work/backend/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000;
  server { listen 127.0.0.1:$backend_port; location / { return 200 "hello from the backend\n"; } }
}
CONF
nginx -c "$work/backend/nginx.conf" -p "$work/backend" & pids+=($!)

# --- nginx as the reverse proxy under test --------------------------------
cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000;
  upstream backend { server 127.0.0.1:$backend_port; keepalive 128; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" & pids+=($!)

# --- Weir, one worker thread ----------------------------------------------
mkdir -p "$work/weir"
cat > "$work/weir/config.yaml" <<CONF
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: weir}
spec: {controllerName: weir.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: bench, namespace: default}
spec:
  gatewayClassName: weir
  listeners: [{name: http, port: $weir_port, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bench, namespace: default}
spec:
  parentRefs: [{name: bench}]
  rules: [{backendRefs: [{name: backend, port: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: backend, namespace: default}
spec: {ports: [{name: http, port: 80, targetPort: $backend_port}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: backend-1, namespace: default, labels: {kubernetes.io/service-name: backend}}
addressType: IPv4
ports: [{name: http, port: $backend_port}]
endpoints: [{addresses: [127.0.0.1], conditions: {ready: true}}]
CONF
WEIR_LOG=warn target/release/weir-gateway --config-dir "$work/weir" --threads 1 \
  --admin-address 127.0.0.1:$admin_port --address-pool 127.0.0.1/32 2>"$work/weir/log" & pids+=($!)

wait_for() { for _ in $(seq 100); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done; echo "not up: $1" >&2; exit 1; }
wait_for "http://127.0.0.1:$backend_port/"
wait_for "http://127.0.0.1:$nginx_port/"
wait_for "http://127.0.0.1:$weir_port/"

run_wrk() { # URL -> "req_per_sec p99_ms"
  wrk -t1 -c"$connections" -d"${duration}s" --latency "$1" > "$work/wrk.out"
  local rps p99
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$work/wrk.out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v=v*1000}; print v}' "$work/wrk.out")
  echo "$rps $p99"
}

# Warm both, then measure each in turn.
wrk -t1 -c"$connections" -d2s "http://127.0.0.1:$nginx_port/" >/dev/null
wrk -t1 -c"$connections" -d2s "http://127.0.0.1:$weir_port/" >/dev/null
read -r nginx_rps nginx_p99 < <(run_wrk "http://127.0.0.1:$nginx_port/")
read -r weir_rps weir_p99 < <(run_wrk "http://127.0.0.1:$weir_port/")

printf '%-6s %12s %10s\n' proxy "req/s" "p99 ms"
printf '%-6s %12s %10s\n' nginx "$nginx_rps" "$nginx_p99"
printf '%-6s %12s %10s\n' weir "$weir_rps" "$weir_p99"
awk -v wr="$weir_rps" -v nr="$nginx_rps" -v wp="$weir_p99" -v np="$nginx_p99" \
  'BEGIN { printf "weir/nginx: req/s ratio %.2f (higher is better), p99 ratio %.2f (lower is better)\n", wr/nr, wp/np }'
echo "($connections connections, ${duration}s, wrk -t1, one worker each, $(nproc) cores)"
