import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempPolicyDir, type TempDir } from '../../test/helpers/policies.js';
import { checkRequest } from '../../test/helpers/requests.js';
import { generateKey, mintToken } from '../../test/helpers/keys.js';
import { HOSTS, REVENUE_SPIFFE, standardFiles } from '../../test/helpers/fixtures.js';
import { COMMANDS, main } from './main.js';
import type { Io } from './usage.js';

interface Run {
  code: number;
  out: string;
  err: string;
}

async function run(...argv: string[]): Promise<Run> {
  let out = '';
  let err = '';
  const io: Io = { out: (s) => (out += s + '\n'), err: (s) => (err += s + '\n') };
  const code = await main(argv, io);
  return { code, out, err };
}

let good: TempDir;
let broken: TempDir;
let shadowed: TempDir;
let requests: TempDir;
const req = (name: string): string => join(requests.dir, name);

before(async () => {
  const key = await generateKey('ES256');
  good = tempPolicyDir(standardFiles([key.publicJwk]));
  broken = tempPolicyDir({ ...standardFiles([key.publicJwk]), '30-broken.yaml': 'apiVersion: portcullis.io/v1alpha1\nkind: ApiPolicy\nmetadata: { name: b, namespace: t }\nspec:\n  hosts: [b.example]\n  rules:\n    - name: r\n      when: "principal.subject =="\n' });
  shadowed = tempPolicyDir({ ...standardFiles([key.publicJwk]), '30-shadowed.yaml': 'apiVersion: portcullis.io/v1alpha1\nkind: ApiPolicy\nmetadata: { name: s, namespace: t }\nspec:\n  hosts: [s.example]\n  rules:\n    - name: everyone\n      methods: [GET]\n    - name: never\n      methods: [GET]\n      paths: ["/v1/x"]\n' });
  requests = tempPolicyDir();
  const agency = checkRequest({ host: HOSTS.stats, path: '/v1/stats/x', principal: REVENUE_SPIFFE, headers: { 'x-purpose-of-use': 'statistics' } });
  requests.write('allow.json', JSON.stringify(agency));
  requests.write('deny.json', JSON.stringify(checkRequest({ host: HOSTS.stats, path: '/v1/stats/x', headers: { 'x-portcullis-tenant': 'dept-revenue' } })));
  requests.write('garbage.json', '{"attributes": ');
  requests.write('array.json', '[]');
  requests.write('typo.json', '{"attributes": {"request": {"http": {"method": "GET", "host": "x", "heders": {}}}}}');
  requests.write('not-check.json', '{"attributes": {"request": {"http": {"method": 5, "headers": "x"}}}}');
  const now = new Date('2026-03-01T12:00:00Z');
  requests.write('token.json', JSON.stringify(checkRequest({ host: HOSTS.records, path: '/v1/citizens/c-1/records', headers: { authorization: `Bearer ${await mintToken(key, { now, sub: 'c-1', claims: { amr: ['mfa'] } })}` } })));
});

after(() => {
  for (const d of [good, broken, shadowed, requests]) d?.remove();
});

describe('cli: --help on every command', () => {
  for (const name of Object.keys(COMMANDS)) {
    test(`${name} --help`, async () => {
      const r = await run(name, '--help');
      assert.equal(r.code, 0);
      assert.match(r.out, new RegExp(`^Usage: portcullis ${name}`));
      const short = await run(name, '-h');
      assert.equal(short.out, r.out);
    });
  }
  test('portcullis --help lists every command', async () => {
    const r = await run('--help');
    assert.equal(r.code, 0);
    for (const name of Object.keys(COMMANDS)) assert.match(r.out, new RegExp(`\\n  ${name} `));
  });
});

describe('cli: exit codes', () => {
  const cases: [string, () => string[], number, RegExp?][] = [
    ['check: allow is 0', () => ['check', '--policies', good.dir, '--request', req('allow.json')], 0],
    ['check: deny is 1', () => ['check', '--policies', good.dir, '--request', req('deny.json')], 1],
    ['check: token valid at --now', () => ['check', '--policies', good.dir, '--request', req('token.json'), '--now', '2026-03-01T12:00:30Z'], 0],
    ['check: token expired at a later --now', () => ['check', '--policies', good.dir, '--request', req('token.json'), '--now', '2026-03-02T12:00:00Z'], 1],
    ['check: bad --now', () => ['check', '--policies', good.dir, '--request', req('allow.json'), '--now', 'yesterday'], 2, /RFC 3339/],
    ['check: request is not JSON', () => ['check', '--policies', good.dir, '--request', req('garbage.json')], 2, /not JSON/],
    ['check: request is not an object', () => ['check', '--policies', good.dir, '--request', req('array.json')], 2, /CheckRequest JSON object/],
    ['check: request is not a CheckRequest', () => ['check', '--policies', good.dir, '--request', req('not-check.json')], 2, /not a CheckRequest/],
    ['check: a misspelt field is named, not decided', () => ['check', '--policies', good.dir, '--request', req('typo.json')], 2, /attributes\.request\.http\.heders: unknown field "heders"/],
    ['check: request file missing', () => ['check', '--policies', good.dir, '--request', req('nope.json')], 2, /cannot read request file/],
    ['check: invalid policy folder', () => ['check', '--policies', broken.dir, '--request', req('allow.json')], 2, /30-broken\.yaml#1 ApiPolicy t\/b \/spec\/rules\/0\/when rule r line 1 column \d+: POLICY_CEL/],
    ['check: missing folder', () => ['check', '--policies', join(good.dir, 'missing'), '--request', req('allow.json')], 2, /cannot read policy folder/],
    ['check: missing flags', () => ['check'], 2, /--policies DIR and --request FILE are required/],
    ['check: unknown flag', () => ['check', '--bogus'], 2, /USAGE/],
    ['explain: deny is 1', () => ['explain', '--policies', good.dir, '--request', req('deny.json')], 1],
    ['validate: valid folder', () => ['validate', good.dir], 0],
    ['validate: invalid folder', () => ['validate', broken.dir], 2, /POLICY_CEL/],
    ['validate: no folder', () => ['validate'], 2, /exactly one folder/],
    ['validate: warnings are printed and do not fail', () => ['validate', shadowed.dir], 0, /warning: .*ApiPolicy t\/s \/spec\/rules\/1 rule never: POLICY_UNREACHABLE: rule never can never allow a request: the earlier rule everyone/],
    ['validate --strict: warnings fail', () => ['validate', '--strict', shadowed.dir], 2, /0 error\(s\), 1 warning\(s\) \(--strict: warnings fail\)/],
    ['serve: no policies', () => ['serve', '--grpc-address', '127.0.0.1:0'], 2, /--policies/],
    ['serve: bad address', () => ['serve', '--policies', good.dir, '--grpc-address', 'nowhere'], 2, /host:port/],
    ['serve: --workers 0', () => ['serve', '--policies', good.dir, '--workers', '0'], 2, /--workers must be auto or an integer from 1 to 64, got "0"/],
    ['serve: --workers 1.5', () => ['serve', '--policies', good.dir, '--workers', '1.5'], 2, /--workers must be auto/],
    ['serve: --workers 65', () => ['serve', '--policies', good.dir, '--workers', '65'], 2, /from 1 to 64/],
    ['unknown command', () => ['frobnicate'], 2, /unknown command "frobnicate"/],
    ['no command', () => [], 2],
  ];
  for (const [name, argv, code, stderr] of cases) {
    test(name, async () => {
      const r = await run(...argv());
      assert.equal(r.code, code, `stdout: ${r.out}\nstderr: ${r.err}`);
      if (stderr) assert.match(r.err, stderr);
    });
  }
});

describe('cli: output', () => {
  test('check prints one JSON line with the decision', async () => {
    const r = await run('check', '--policies', good.dir, '--request', req('allow.json'));
    const lines = r.out.trim().split('\n');
    assert.equal(lines.length, 1);
    const d = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal(d.decision, 'allow');
    assert.equal(d.status, 200);
    assert.equal(d.rule, 'agency-aggregates');
    assert.equal(d.code, null);
  });

  test('explain adds the policy, the principal and the trace', async () => {
    const r = await run('explain', '--policies', good.dir, '--request', req('allow.json'));
    const d = JSON.parse(r.out) as { policy: string; principal: { tenant: string }; trace: { rule: string; matched: boolean }[] };
    assert.equal(d.policy, 't/stats');
    assert.equal(d.principal.tenant, 'dept-revenue');
    assert.deepEqual(d.trace, [{ rule: 'agency-aggregates', effect: 'allow', matched: true, reason: 'matched' }]);
  });

  test('validate reports counts', async () => {
    const r = await run('validate', good.dir);
    assert.match(r.out, /valid: 3 ApiPolicies, 4 Tenants/);
  });

  test('check: an anonymous public endpoint is allowed', async () => {
    writeFileSync(req('copy.json'), JSON.stringify(checkRequest({ host: HOSTS.open, path: '/healthz' })));
    assert.equal((await run('check', '--policies', good.dir, '--request', req('copy.json'))).code, 0);
  });
});
