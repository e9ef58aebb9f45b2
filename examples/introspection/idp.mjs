#!/usr/bin/env node
// A demo OAuth 2.0 provider for this example only: OIDC discovery and RFC 7662 introspection on
// 127.0.0.1 (default port 8090). Two opaque tokens exist: demo-opaque-token-active (active for an
// hour, subject partner-42) and demo-opaque-token-inactive (revoked at the provider).
//   node examples/introspection/idp.mjs [--port 8090]
import { createServer } from 'node:http';

const i = process.argv.indexOf('--port');
const port = i >= 0 ? Number(process.argv[i + 1]) : 8090;
const issuer = `http://127.0.0.1:${port}`;
const CLIENT = `Basic ${Buffer.from('portcullis:demo-introspection-secret-not-a-secret').toString('base64')}`;

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/.well-known/openid-configuration') {
    return json(res, 200, { issuer, jwks_uri: `${issuer}/jwks`, introspection_endpoint: `${issuer}/introspect` });
  }
  if (req.method === 'GET' && req.url === '/jwks') return json(res, 200, { keys: [] });
  if (req.method === 'POST' && req.url === '/introspect') {
    if (req.headers.authorization !== CLIENT) return json(res, 401, { error: 'invalid_client' });
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const token = new URLSearchParams(body).get('token');
      if (token === 'demo-opaque-token-active') {
        const now = Math.floor(Date.now() / 1000);
        return json(res, 200, { active: true, sub: 'partner-42', client_id: 'catalogue-reader', aud: 'catalogue', iss: issuer, iat: now, exp: now + 3600 });
      }
      return json(res, 200, { active: false });
    });
    return;
  }
  json(res, 404, { error: 'not_found' });
}).listen(port, '127.0.0.1', () => console.error(`demo introspection provider on ${issuer}`));
