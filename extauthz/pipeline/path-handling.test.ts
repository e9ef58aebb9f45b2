import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileValid } from '../../test/helpers/policies.js';
import { checkRequest } from '../../test/helpers/requests.js';
import { DecisionPipeline } from './pipeline.js';

const policy = (name: string, host: string, handling: string): string => `apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: ${name}, namespace: t }
spec:
  hosts: [${host}]
${handling}  rules:
    - name: no-admin
      effect: deny
      paths: ["/admin/**", "/admin"]
    - name: items
      methods: [GET]
      paths: ["/v1/items/{id}"]
      principals: { anonymous: true }
      when: "params.id != 'secret' && request.path != '/v1/items/secret'"
    - name: public
      methods: [GET]
      paths: ["/public/**"]
      principals: { anonymous: true }
`;

const snapshot = compileValid({
  'p.yaml': [
    policy('default', 'default.example', ''),
    policy('strip', 'strip.example', '  pathHandling: { parameters: strip, fragment: strip }\n'),
    policy('keep', 'keep.example', '  pathHandling: { parameters: keep }\n'),
  ].join('---\n'),
}).snapshot;
const pipeline = new DecisionPipeline({ snapshot: () => snapshot });

async function decide(host: string, path: string): Promise<string> {
  const d = await pipeline.check(checkRequest({ host, path }));
  return d.allowed ? `allow ${d.rule}` : `${d.code}`;
}

describe('paths from the attacker side: one meaning for Portcullis and the upstream', () => {
  const cases: [string, string, string, string][] = [
    // [why, host, forged path, the decision it must get]
    ['a path parameter is refused by default', 'default.example', '/admin;x=1', 'BAD_REQUEST'],
    ['a parameter hiding the deny rule from a servlet upstream', 'default.example', '/public/..;/admin', 'BAD_REQUEST'],
    ['a parameter on an allowed path is refused too', 'default.example', '/v1/items;jsessionid=1', 'BAD_REQUEST'],
    ['a fragment is refused by default', 'default.example', '/v1/items/1#x', 'BAD_REQUEST'],
    ['strip: the decision is on the path a servlet container routes', 'strip.example', '/admin;x=1', 'FORBIDDEN'],
    ['strip: parameters do not hide a forbidden value', 'strip.example', '/v1/items/secret;v=1', 'UNAUTHENTICATED'],
    ['strip: an allowed path with a session parameter', 'strip.example', '/v1/items/7;jsessionid=abc', 'allow items'],
    ['strip: a segment that is only a parameter leaves an empty segment', 'strip.example', '/v1/;x/items', 'BAD_REQUEST'],
    ['strip: a fragment is dropped as Envoy does', 'strip.example', '/admin#/v1/items/1', 'FORBIDDEN'],
    ['keep: ; is part of the segment', 'keep.example', '/v1/items/secret;v=1', 'allow items'],
    ['keep: /admin;x=1 is its own segment, allowed by no rule', 'keep.example', '/admin;x=1', 'UNAUTHENTICATED'],
    ['keep: ..; is a literal segment name, not a traversal (keep only suits upstreams that agree)', 'keep.example', '/public/..;/admin', 'allow public'],
    ['an encoded ; is data, not a parameter', 'default.example', '/v1/items/a%3Bb', 'allow items'],
    ['percent-encoded unreserved characters mean the same path', 'default.example', '/%61dmin', 'FORBIDDEN'],
    ['encoded traversal', 'default.example', '/public/%2e%2e/admin', 'BAD_REQUEST'],
    ['traversal', 'default.example', '/public/../admin', 'BAD_REQUEST'],
    ['dot segment', 'default.example', '/./admin', 'BAD_REQUEST'],
    ['merged slashes would change the path', 'default.example', '//admin', 'BAD_REQUEST'],
    ['an encoded slash', 'default.example', '/public%2F..%2Fadmin', 'BAD_REQUEST'],
    ['a raw backslash', 'default.example', '/public\\..\\admin', 'BAD_REQUEST'],
    ['a raw space', 'default.example', '/v1/items/a b', 'BAD_REQUEST'],
    ['a raw non-ASCII character', 'default.example', '/v1/items/\u00e9', 'BAD_REQUEST'],
    ['a raw DEL', 'default.example', '/v1/items/a\u007f', 'BAD_REQUEST'],
  ];
  for (const [why, host, path, want] of cases) test(`${why}: ${path} → ${want}`, async () => assert.equal(await decide(host, path), want));
});
