#!/usr/bin/env bash
# Builds the benchmark's Go tools from their modules into the shared cache (idempotent):
#   ghz            github.com/bojand/ghz/cmd/ghz (tools/ghz/go.mod pins the version)
#   opa-ext-authz  tools/opa-ext-authz: OPA's Rego engine behind an Envoy ext_authz server, the
#                  stand-in for opa-envoy-plugin, whose module the Go proxy refuses (403).
# and installs gnuplot (Debian gnuplot-nox) for the chart when it is missing.
# Prints NAME=PATH lines for run.ts. Cache: ${PORTCULLIS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/portcullis}/bin
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${PORTCULLIS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/portcullis}
BIN="$CACHE/bin"
GHZ_VERSION=v0.93.0
OPA_VERSION=v1.22.2
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
mkdir -p "$BIN"

build() { # name version module-dir package
  local out="$BIN/$1-$2"
  if [[ ! -x $out ]]; then
    echo "build-tools.sh: building $1 $2" >&2
    (cd "$HERE/tools/$3" && "$GO" build -trimpath -o "$out.tmp" "$4" && mv "$out.tmp" "$out") >&2
  fi
  echo "$1=$out"
}

grep -q "github.com/bojand/ghz $GHZ_VERSION" "$HERE/tools/ghz/go.mod" || { echo "tools/ghz/go.mod does not pin ghz $GHZ_VERSION" >&2; exit 1; }
grep -q "github.com/open-policy-agent/opa $OPA_VERSION" "$HERE/tools/opa-ext-authz/go.mod" || { echo "tools/opa-ext-authz/go.mod does not pin opa $OPA_VERSION" >&2; exit 1; }
build ghz "$GHZ_VERSION" ghz github.com/bojand/ghz/cmd/ghz
build opa-ext-authz "$OPA_VERSION" opa-ext-authz .

if ! command -v gnuplot >/dev/null 2>&1; then
  echo "build-tools.sh: installing gnuplot-nox" >&2
  { apt-get install -y -q gnuplot-nox || { apt-get update -q && apt-get install -y -q gnuplot-nox; }; } >&2 || echo "build-tools.sh: gnuplot unavailable; the chart will be skipped" >&2
fi
command -v gnuplot >/dev/null 2>&1 && echo "gnuplot=$(command -v gnuplot)" || true
