#!/usr/bin/env bash
# Installs what the test tiers need beyond npm, when missing: Debian packages (redis-server,
# openssl) and the Go-built upstream binaries (test/tools/build.sh caches them by version).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v openssl >/dev/null || need_apt+=(openssl)
if ((${#need_apt[@]})); then
  echo "setup: installing ${need_apt[*]} from Debian packages"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

if [ -x test/tools/build.sh ] || [ -f test/tools/build.sh ]; then
  bash test/tools/build.sh
fi
