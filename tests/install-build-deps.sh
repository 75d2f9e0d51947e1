#!/usr/bin/env bash
# Installs what building Weir needs beyond the Rust toolchain: cmake and a C
# compiler (Pingora's zlib-ng). Idempotent; quiet when everything is there.
set -euo pipefail
missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
for tool in "$@"; do
  case "$tool" in
    nginx) command -v nginx >/dev/null 2>&1 || missing+=(nginx-light) ;;
    wrk) command -v wrk >/dev/null 2>&1 || missing+=(wrk) ;;
  esac
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing ${missing[*]} ..." >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
