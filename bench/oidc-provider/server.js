// The peer baseline of the mcp-auth benchmark: oidc-provider configured like mcp-auth serves
// MCP clients (dynamic registration, introspection, revocation, client credentials, refresh
// tokens rotated on every use with reuse detection, ES256 JWT access tokens for the MCP
// resource), on its default in-memory adapter.
//
// PORT: where to listen on 127.0.0.1. RESOURCE: the MCP server access tokens are for.
// Besides the provider's own routes, `POST /bench/refresh-tokens?n=N` seeds N grants, each with
// one refresh token of client `bench` (secret `bench-secret`), through the provider's own
// models, exactly as an authorization-code exchange would have stored them; the benchmark uses
// it instead of driving N interactive sign-ins.

import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const RESOURCE = process.env.RESOURCE ?? 'http://127.0.0.1:8001/mcp';
const SCOPES = 'mcp:read mcp:write';

const key = (type, options) => ({
  ...generateKeyPairSync(type, options).privateKey.export({ format: 'jwk' }),
  use: 'sig',
});

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'bench',
      client_secret: 'bench-secret',
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1:49152/callback'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: {
    keys: [
      { ...key('ec', { namedCurve: 'P-256' }), alg: 'ES256' },
      { ...key('rsa', { modulusLength: 2048 }), alg: 'RS256' },
    ],
  },
  scopes: ['openid', 'offline_access', 'mcp:read', 'mcp:write'],
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true },
    // Any authenticated client may introspect, as confidential clients may at mcp-auth.
    introspection: { enabled: true, allowedPolicy: () => true },
    revocation: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // Refreshed access tokens are for the MCP resource, as mcp-auth's are; client
      // credentials without `resource` stay opaque so that introspection can find them.
      defaultResource: (ctx) => (ctx.oidc.params?.grant_type === 'refresh_token' ? RESOURCE : undefined),
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: SCOPES,
        audience: RESOURCE,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
  rotateRefreshToken: true,
  // mcp-auth's defaults: access tokens 1 hour, refresh tokens and their grants 30 days.
  ttl: {
    AccessToken: 3600,
    ClientCredentials: 3600,
    RefreshToken: 30 * 24 * 3600,
    Grant: 30 * 24 * 3600,
  },
  findAccount: (ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
});

async function seedRefreshTokens(n) {
  const client = await provider.Client.find('bench');
  const now = Math.floor(Date.now() / 1000);
  const tokens = [];
  for (let i = 0; i < n; i += 1) {
    const grant = new provider.Grant({ accountId: 'demo', clientId: client.clientId });
    grant.addOIDCScope('offline_access');
    grant.addResourceScope(RESOURCE, SCOPES);
    const grantId = await grant.save();
    const token = new provider.RefreshToken({
      accountId: 'demo',
      client,
      grantId,
      gty: 'authorization_code',
      scope: `offline_access ${SCOPES}`,
      resource: RESOURCE,
      authTime: now,
      iiat: now,
    });
    tokens.push(await token.save());
  }
  return tokens;
}

const handle = provider.callback();
const server = http.createServer((req, res) => {
  const url = new URL(req.url, issuer);
  if (req.method === 'POST' && url.pathname === '/bench/refresh-tokens') {
    seedRefreshTokens(Number(url.searchParams.get('n') ?? '1')).then(
      (tokens) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ refresh_tokens: tokens }));
      },
      (err) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(err));
      },
    );
    return;
  }
  handle(req, res);
});
server.listen(port, '127.0.0.1', () => console.log(`oidc-provider listening on ${issuer}`));
