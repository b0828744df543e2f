// A protected MCP server for the end-to-end tests, built as the official TypeScript SDK
// (`@modelcontextprotocol/sdk`) shows: express from `createMcpExpressApp`, RFC 9728 metadata from
// `mcpAuthMetadataRouter`, the 401 challenge and the token check from `requireBearerAuth`, and a
// `StreamableHTTPServerTransport` per request (stateless). Its one tool, `whoami`, names the
// token's subject and client.
//
// It is configured the way an operator configures it: with mcp-auth's issuer exactly as typed for
// mcp-auth (`MCP_AUTH_SERVER_URL`, e.g. `https://auth.example.com`) and its own URL. Like every
// URL the SDK takes, the issuer is a WHATWG `URL`, and `issuer.href` is what the server compares
// a token's `iss` with. The authorization server's metadata (`oauthMetadata`) is that server's
// own RFC 8414 document, fetched with the SDK's `discoverAuthorizationServerMetadata`. Tokens are
// checked locally against mcp-auth's JWKS (an RFC 9068 JWT, with `jose`), or by RFC 7662
// introspection as resource server `rs`; either way they must be for this server (RFC 8707).
//
// Talks to the test over a line protocol, so that no port has to be guessed:
//   stdout `port N`     its listening socket is bound (127.0.0.1, ephemeral)
//   stdin   ISSUER      mcp-auth's issuer as typed, once mcp-auth runs
//   stdout `ready`      it serves
// Refused tokens are logged on stderr, with the reason.

import { createServer } from 'node:http';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

import { discoverAuthorizationServerMetadata } from '@modelcontextprotocol/sdk/client/auth.js';
import { InvalidTokenError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import {
    getOAuthProtectedResourceMetadataUrl,
    mcpAuthMetadataRouter
} from '@modelcontextprotocol/sdk/server/auth/router.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const { values: args } = parseArgs({
    options: {
        verify: { type: 'string' },
        'introspection-client': { type: 'string', default: 'rs:rs-secret' }
    }
});
if (!['jwks', 'introspection'].includes(args.verify)) {
    throw new Error('--verify jwks|introspection');
}

// Listen first: mcp-auth must know this server's URL (MCP_SERVER) before it starts.
const http = createServer();
await new Promise(resolve => http.listen(0, '127.0.0.1', resolve));
const mcpServerUrl = new URL(`http://127.0.0.1:${http.address().port}/mcp`);
console.log(`port ${http.address().port}`);

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const typed = (await lines.next()).value.trim();

// --- What a user writes to make the SDK trust mcp-auth. ---
const issuer = new URL(typed);
const oauthMetadata = await discoverAuthorizationServerMetadata(issuer);
const verifier = args.verify === 'jwks' ? jwksVerifier() : introspectionVerifier();

const app = createMcpExpressApp();
app.use(mcpAuthMetadataRouter({ oauthMetadata, resourceServerUrl: mcpServerUrl }));
const auth = requireBearerAuth({
    verifier,
    requiredScopes: ['mcp:read'],
    resourceMetadataUrl: getOAuthProtectedResourceMetadataUrl(mcpServerUrl),
    expectedResource: mcpServerUrl
});
// --- The rest is the SDK's stateless streamable HTTP server. ---

app.post('/mcp', auth, async (req, res) => {
    const server = mcpServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
        transport.close();
        server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
});
// Stateless: no stream to resume, no session to end.
app.all('/mcp', auth, (_req, res) => {
    res.status(405).set('Allow', 'POST').end();
});

http.on('request', app);
console.log('ready');

/** RFC 9068 JWT access tokens, checked against mcp-auth's JWKS. */
function jwksVerifier() {
    const jwks = createRemoteJWKSet(new URL(oauthMetadata.jwks_uri));
    return {
        async verifyAccessToken(token) {
            let payload;
            try {
                ({ payload } = await jwtVerify(token, jwks, {
                    issuer: issuer.href,
                    audience: mcpServerUrl.href,
                    typ: 'at+jwt',
                    requiredClaims: ['exp', 'sub', 'client_id']
                }));
            } catch (error) {
                throw refused(error.message);
            }
            return authInfo(token, payload);
        }
    };
}

/** RFC 7662: mcp-auth says whether the token is active, and for whom. */
function introspectionVerifier() {
    const [id, secret] = args['introspection-client'].split(':');
    return {
        async verifyAccessToken(token) {
            const response = await fetch(oauthMetadata.introspection_endpoint, {
                method: 'POST',
                headers: { authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` },
                body: new URLSearchParams({ token })
            });
            if (!response.ok) {
                throw new Error(`introspection: HTTP ${response.status}`);
            }
            const info = await response.json();
            const audiences = [info.aud ?? []].flat();
            // A refresh token is active too (RFC 7662 §2.2), but it is no bearer token.
            if (
                info.active !== true ||
                info.token_type !== 'Bearer' ||
                info.iss !== issuer.href ||
                !audiences.includes(mcpServerUrl.href)
            ) {
                throw refused(JSON.stringify(info));
            }
            return authInfo(token, info);
        }
    };
}

/** The SDK's `AuthInfo` from JWT claims or an introspection response (the same names). */
function authInfo(token, claims) {
    return {
        token,
        clientId: claims.client_id,
        scopes: (claims.scope ?? '').split(' ').filter(Boolean),
        expiresAt: claims.exp,
        resource: mcpServerUrl,
        extra: { sub: claims.sub }
    };
}

function refused(reason) {
    console.error(`refused a token: ${reason}`);
    return new InvalidTokenError('the token is not valid here');
}

function mcpServer() {
    const server = new McpServer({ name: 'mcp-auth e2e (TypeScript)', version: '1.0.0' });
    server.registerTool('whoami', { description: 'Who the bearer token speaks for.' }, async extra => {
        const { clientId, extra: claims } = extra.authInfo;
        return { content: [{ type: 'text', text: `${claims.sub} via ${clientId}` }] };
    });
    return server;
}
