#!/usr/bin/env bash
# The citizen's access report, end to end: a few decisions are audited into a signed, chained log
# (each `portcullis check` run appends a chain of its own, linked to the previous one), then
# `portcullis audit access-report` lists who accessed citizen 1984's records, for what purpose and
# under which legal basis. Finally one record is altered and the report refuses to call itself
# complete. Keys are generated into a temporary folder and removed afterwards; none is committed.
#
#   make build && bash examples/accountability/report.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$(bash test/tools/node.sh):$PATH"
portcullis() { node dist/extauthz/cli/main.js "$@"; }
here=examples/accountability
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Keys: an Ed25519 key signing the checkpoints (and its public JWKS), and the subject key.
node --input-type=module -e '
  import { generateKeyPairSync, randomBytes } from "node:crypto";
  import { writeFileSync } from "node:fs";
  const { privateKey } = generateKeyPairSync("ed25519");
  writeFileSync(process.argv[1] + "/audit-key.pem", privateKey.export({ type: "pkcs8", format: "pem" }));
  writeFileSync(process.argv[1] + "/subject.key", randomBytes(32));' "$work"
node --input-type=module -e '
  const { SigningKey } = await import(process.cwd() + "/dist/extauthz/audit/keys.js");
  console.log(JSON.stringify(SigningKey.fromFile(process.argv[1] + "/audit-key.pem").jwks()));' "$work" > "$work/audit-jwks.json"

# The policies, plus a citizen app that trusts the development IdP's keys (inline JWKS).
mkdir "$work/policies"
cp "$here"/policies/*.yaml "$work/policies/"
cat > "$work/policies/15-citizen-app.yaml" <<YAML
apiVersion: portcullis.io/v1alpha1
kind: Tenant
metadata: { name: citizen-app, namespace: c2g }
spec:
  type: consumer-app
  identity:
    jwt: { issuer: https://id.c2g.example, audiences: [records-api], jwks: $(node examples/dev-idp.mjs jwks) }
YAML
node examples/dev-idp.mjs request "$here/requests/citizen-own-1984.json" --sub 1984 --amr mfa > "$work/citizen-own-1984.json"

audit=(--audit-file "$work/audit.log" --audit-key-file "$work/audit-key.pem" --audit-subject-key-file "$work/subject.key")
for r in "$here"/requests/revenue-audit-1984.json "$here"/requests/revenue-no-purpose-1984.json \
         "$here"/requests/health-eligibility-1984.json "$here"/requests/revenue-audit-2001.json "$work/citizen-own-1984.json"; do
  printf '%-28s ' "$(basename "$r" .json)"
  portcullis check --policies "$work/policies" --request "$r" "${audit[@]}" 2>/dev/null | node -e '
    const d = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
    console.log(d.decision, d.code ?? "", d.rule ?? "")' || true
done

report=(audit access-report --subject 1984 --subject-key-file "$work/subject.key" --jwks "$work/audit-jwks.json")
echo; echo "== the report (citizen 2001's record and 1984's own access are not in it)"
portcullis "${report[@]}" "$work/audit.log"
echo "exit status $?"

echo; echo "== after someone edits the legal basis of one record"
sed -i '0,/"legalBasis":"Tax Administration Act/s//"legalBasis":"Tax Act/' "$work/audit.log"
set +e
portcullis "${report[@]}" "$work/audit.log"
echo "exit status $?"
