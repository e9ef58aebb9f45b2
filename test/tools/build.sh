#!/usr/bin/env bash
# Builds the upstream components the Portcullis tests run (kube-apiserver,
# kube-controller-manager, etcd, helm) from their published Go modules, and copies the
# upstream CRD YAML (Istio, Gateway API standard channel, Envoy Gateway) out of their Go
# modules, into a cache keyed by version. Idempotent: anything already cached is skipped.
#
#   test/tools/build.sh                 # everything
#   test/tools/build.sh kube etcd       # a subset of: kube etcd helm crds
#
# Cache: ${PORTCULLIS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/portcullis}
#   bin/<name>-<version>               executables
#   crds/<upstream>-<version>/*.yaml   CRD manifests (a .complete marker is written last)
# Versions: test/tools/versions.env (the only place they are pinned).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$HERE/versions.env"
CACHE=${PORTCULLIS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/portcullis}
BIN="$CACHE/bin"
CRDS="$CACHE/crds"

die() { echo "build.sh: ERROR: $*" >&2; exit 1; }
log() { echo "build.sh: $*"; }

GO=${GO:-}
if [[ -z $GO ]]; then
  if command -v go >/dev/null 2>&1; then GO=$(command -v go)
  elif [[ -x /usr/local/go/bin/go ]]; then GO=/usr/local/go/bin/go
  else die "no Go toolchain found (set GO=/path/to/go or put go on PATH)"; fi
fi

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

mkdir -p "$CACHE"
# Serialise concurrent callers (e.g. parallel test processes) so they don't build twice.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE/.build.lock"
  flock 9
fi

declare -a SUMMARY=()
TOTAL_START=$(now)

# check_pin <module dir> <module path> <version>: the go.mod must require exactly that version.
check_pin() {
  local dir=$1 mod=$2 ver=$3
  grep -Eq "^[[:space:]]*(require[[:space:]]+)?${mod//./\\.}[[:space:]]+${ver//./\\.}([[:space:]]|$)" "$dir/go.mod" \
    || die "$dir/go.mod does not require $mod $ver (versions.env says $ver); edit go.mod and run go mod tidy"
}

# build_bin <name> <version> <module dir> <package> [extra ldflags]
build_bin() {
  local name=$1 ver=$2 dir=$3 pkg=$4 extra=${5:-}
  local out="$BIN/$name-$ver"
  if [[ -x $out ]]; then
    log "skip  $name $ver (cached: $out)"
    SUMMARY+=("$name=$out")
    return
  fi
  mkdir -p "$BIN"
  local tmp="$out.tmp.$$" start
  start=$(now)
  log "build $name $ver from $pkg ..."
  if ! (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=readonly "$GO" build -trimpath \
          -ldflags="-s -w $extra" -o "$tmp" "$pkg"); then
    rm -f "$tmp"
    die "go build of $pkg ($name $ver) failed; see the compiler output above"
  fi
  mv -f "$tmp" "$out"
  log "built $name $ver in $(elapsed "$start") -> $out ($(du -h "$out" | cut -f1))"
  SUMMARY+=("$name=$out")
}

do_kube() {
  local dir="$HERE/kube" ver=$KUBE_VERSION
  check_pin "$dir" k8s.io/kubernetes "$ver"
  local staging="v0.${ver#v1.}" bad
  bad=$(grep -E '^[[:space:]]*k8s\.io/[a-z0-9-]+ => k8s\.io/' "$dir/go.mod" | grep -v " $staging\$" || true)
  [[ -z $bad ]] || die "kube/go.mod staging replaces must all be $staging, found: $bad"
  local minor=${ver#v1.}; minor=${minor%%.*}
  local vflags="-X k8s.io/component-base/version.gitVersion=$ver -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
  build_bin kube-apiserver "$ver" "$dir" k8s.io/kubernetes/cmd/kube-apiserver "$vflags"
  build_bin kube-controller-manager "$ver" "$dir" k8s.io/kubernetes/cmd/kube-controller-manager "$vflags"
}

do_etcd() {
  check_pin "$HERE/etcd" go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
  build_bin etcd "$ETCD_VERSION" "$HERE/etcd" go.etcd.io/etcd/server/v3
}

do_helm() {
  check_pin "$HERE/helm" helm.sh/helm/v3 "$HELM_VERSION"
  build_bin helm "$HELM_VERSION" "$HERE/helm" helm.sh/helm/v3/cmd/helm \
    "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
}

# module_dir <module path>: download (verified against crds/go.sum) and print its directory.
module_dir() {
  local json dir
  json=$(cd "$HERE/crds" && GOFLAGS=-mod=readonly "$GO" mod download -json "$1") \
    || die "go mod download $1 failed: $json"
  dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$json")
  [[ -n $dir && -d $dir ]] || die "go mod download $1 gave no Dir: $json"
  echo "$dir"
}

# fetch_crds <upstream> <version> <module path> <subdir> <glob> [strip-helm-wrapper]
fetch_crds() {
  local up=$1 ver=$2 mod=$3 sub=$4 glob=$5 strip=${6:-}
  local dest="$CRDS/$up-$ver"
  check_pin "$HERE/crds" "$mod" "$ver"
  if [[ -f $dest/.complete ]]; then
    log "skip  crds $up $ver (cached: $dest)"
    SUMMARY+=("crds/$up=$dest")
    return
  fi
  local start src tmp n=0 f
  start=$(now)
  src="$(module_dir "$mod")/$sub"
  [[ -d $src ]] || die "$mod@$ver has no directory $sub"
  mkdir -p "$CRDS"
  tmp="$dest.tmp.$$"
  rm -rf "$tmp" && mkdir -p "$tmp"
  shopt -s nullglob
  for f in "$src"/$glob; do
    if [[ -n $strip ]]; then
      # Envoy Gateway ships its CRDs inside a chart, each file wrapped in
      # `{{- if .Values.crds.envoyGateway.enabled }} ... {{- end }}`; drop exactly those lines.
      grep -v -E '^\{\{-? *(if \.Values\.crds\.[A-Za-z.]+|end) *-?\}\}$' "$f" >"$tmp/$(basename "$f")"
      if grep -q '{{' "$tmp/$(basename "$f")"; then die "unexpected Helm templating left in $f"; fi
    else
      cp "$f" "$tmp/"
    fi
    n=$((n + 1))
  done
  shopt -u nullglob
  ((n > 0)) || die "no files matched $sub/$glob in $mod@$ver"
  chmod -R u+w "$tmp"
  touch "$tmp/.complete"
  rm -rf "$dest" # only reached when $dest is missing or incomplete
  mv -T "$tmp" "$dest"
  log "crds  $up $ver: $n file(s) from $mod/$sub in $(elapsed "$start") -> $dest"
  SUMMARY+=("crds/$up=$dest")
}

do_crds() {
  fetch_crds istio "$ISTIO_API_VERSION" istio.io/api kubernetes customresourcedefinitions.gen.yaml
  fetch_crds gateway-api "$GATEWAY_API_VERSION" sigs.k8s.io/gateway-api config/crd/standard '*.yaml'
  fetch_crds envoy-gateway "$ENVOY_GATEWAY_VERSION" github.com/envoyproxy/gateway \
    charts/gateway-crds-helm/templates/generated 'gateway.envoyproxy.io_*.yaml' strip
  fetch_crds prometheus-operator "$PROMETHEUS_OPERATOR_VERSION" github.com/prometheus-operator/prometheus-operator \
    example/prometheus-operator-crd 'monitoring.coreos.com_prometheusrules.yaml'
}

targets=("$@")
((${#targets[@]})) || targets=(kube etcd helm crds)
for t in "${targets[@]}"; do
  case $t in
    kube | etcd | helm | crds) ;;
    *) die "unknown target '$t' (expected any of: kube etcd helm crds)" ;;
  esac
done
for t in "${targets[@]}"; do
  s=$(now)
  "do_$t"
  log "step  $t done in $(elapsed "$s")"
done
echo "build.sh: OK in $(elapsed "$TOTAL_START") (cache $CACHE): ${SUMMARY[*]}"
