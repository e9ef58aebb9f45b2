/**
 * The Rego equivalent of the workload (workload.ts): the same JWT verification (signature with
 * the tenant's JWKS, issuer, audience, expiry, MFA amr, acr), the same SPIFFE binding, API-key
 * digest, route per host and the same three rules. OPA has no quotas: that work is Portcullis's
 * alone, and docs/benchmarks.md says so.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { API_KEY_DIGEST, AUDIENCE, host, ISSUERS, PURPOSES, SPIFFE_PREFIX, type Workload } from './workload.js';

export const REGO = `package envoy.authz

import rego.v1

default allow := false

http := input.attributes.request.http

headers := http.headers

route := data.hosts[http.host]

bearer := t if {
	startswith(headers.authorization, "Bearer ")
	t := substring(headers.authorization, 7, -1)
}

consumer := claims if {
	[_, unverified, _] := io.jwt.decode(bearer)
	issuer := data.issuers[unverified.iss]
	[valid, _, claims] := io.jwt.decode_verify(bearer, {"cert": issuer.jwks, "iss": unverified.iss, "aud": "${AUDIENCE}", "time": time.now_ns()})
	valid
	some a in claims.amr
	a in {"mfa", "hwk"}
}

agency := data.agency if {
	not headers.authorization
	startswith(input.attributes.source.principal, data.agency.spiffe_prefix)
}

partner if {
	not headers.authorization
	crypto.sha256(headers["x-api-key"]) == data.partner.key_digest
}

# citizen-own-record: GET /v1/citizens/{id}/records, consumer, MFA, subject == id, acr high.
allow if {
	route
	http.method == "GET"
	["v1", "citizens", id, "records"] = input.parsed_path
	consumer.sub == id
	consumer.acr == "urn:loa:high"
}

# agency-stats: GET /v1/stats/**, agency, declared purpose among the tenant's, jurisdiction EU.
allow if {
	route
	http.method == "GET"
	input.parsed_path[0] == "v1"
	input.parsed_path[1] == "stats"
	count(input.parsed_path) > 2
	headers["x-purpose-of-use"] in agency.purposes
	agency.attributes.jurisdiction == "EU"
}

# partner-datasets: GET|HEAD /v1/datasets/{ds}, partner, ds starts with open-.
allow if {
	route
	http.method in {"GET", "HEAD"}
	["v1", "datasets", ds] = input.parsed_path
	partner
	startswith(ds, "open-")
	count(ds) < 64
}
`;

export function writeOpaFiles(dir: string, w: Workload): { policy: string; data: string } {
  const hosts: Record<string, { policy: string }> = {};
  for (let i = 0; i < w.policies; i++) hosts[host(i)] = { policy: `api-${i}` };
  const data = {
    hosts,
    issuers: {
      [ISSUERS.rs]: { jwks: JSON.stringify({ keys: [w.keys.rs.publicJwk] }) },
      [ISSUERS.es]: { jwks: JSON.stringify({ keys: [w.keys.es.publicJwk] }) },
    },
    agency: { spiffe_prefix: SPIFFE_PREFIX, purposes: PURPOSES, attributes: { jurisdiction: 'EU', clearance: 'secret' } },
    partner: { key_digest: API_KEY_DIGEST() },
  };
  const policy = join(dir, 'authz.rego');
  const dataFile = join(dir, 'data.json');
  writeFileSync(policy, REGO);
  writeFileSync(dataFile, JSON.stringify(data));
  return { policy, data: dataFile };
}
