"""A protected MCP server for the end-to-end tests, built on the official Python SDK's MCPServer.

It trusts mcp-auth the way a real resource server would: it publishes RFC 9728 metadata naming
mcp-auth as its authorization server, answers 401 with `WWW-Authenticate: Bearer
resource_metadata="..."` (both from the SDK), and accepts a bearer token only when it is for its
own resource URL (RFC 8707 audience), checked either locally against mcp-auth's JWKS (an RFC 9068
JWT) or by RFC 7662 introspection. Its tool `whoami` names the token's subject and client. With
`--taskmanager URL` it also has `tasks`, which acts for the user at TaskManager: it exchanges the
caller's token at mcp-auth's /token for the user's TaskManager token (RFC 8693, authenticated with
its introspection credentials) and calls TaskManager's `GET /api/tasks` with it.

It is configured the way a user configures one, from the one string the operator typed for
mcp-auth's `MCP_AUTH_SERVER_URL` (e.g. `http://127.0.0.1:3000`, no trailing slash): `AuthSettings`
gets it as the SDK's documentation writes it, `AnyHttpUrl(...)`, and the verifiers compare `iss`
with that same URL's string, which is what mcp-auth publishes as its issuer (`.../`). Nothing is
read from mcp-auth's metadata: the test would otherwise learn the issuer from the server under
test instead of checking it.

Talks to the test over a line protocol, so that no port has to be guessed:
  stdout `port N`     its listening socket is bound (127.0.0.1, ephemeral)
  stdin   URL         MCP_AUTH_SERVER_URL exactly as the operator gave it to mcp-auth
  stdout `ready`      it serves
"""

import argparse
import socket
import sys

import anyio
import httpx2
import jwt
import uvicorn
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from pydantic import AnyHttpUrl

# RFC 9068 §2.1: the `typ` header of a JWT access token.
ACCESS_TOKEN_TYPE = "at+jwt"


class JwksVerifier:
    """Verifies RFC 9068 JWT access tokens against the authorization server's JWKS (§4)."""

    def __init__(self, issuer: str, jwks_uri: str, resource: str):
        self.issuer = issuer
        self.resource = resource
        self.keys = jwt.PyJWKClient(jwks_uri, cache_keys=True)

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            if jwt.get_unverified_header(token).get("typ") != ACCESS_TOKEN_TYPE:
                return None
            key = await anyio.to_thread.run_sync(self.keys.get_signing_key_from_jwt, token)
            claims = jwt.decode(
                token,
                key,
                algorithms=["ES256", "EdDSA", "RS256"],
                audience=self.resource,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud", "sub", "client_id"]},
            )
        except jwt.PyJWTError as error:
            print(f"refused a token: {error}", file=sys.stderr)
            return None
        return access_token(token, claims, self.resource)


class IntrospectionVerifier:
    """Asks the authorization server about each token (RFC 7662), as resource server `rs`."""

    def __init__(self, issuer: str, endpoint: str, resource: str, credentials: tuple[str, str]):
        self.issuer = issuer
        self.endpoint = endpoint
        self.resource = resource
        self.credentials = credentials

    async def verify_token(self, token: str) -> AccessToken | None:
        async with httpx2.AsyncClient(auth=self.credentials) as client:
            response = await client.post(self.endpoint, data={"token": token})
        response.raise_for_status()
        info = response.json()
        audiences = info.get("aud")
        audiences = audiences if isinstance(audiences, list) else [audiences]
        if not (
            info.get("active") is True
            # A refresh token is active too (RFC 7662 §2.2), but it is no bearer token.
            and info.get("token_type") == "Bearer"
            and info.get("iss") == self.issuer
            and self.resource in audiences
        ):
            print(f"refused a token: {info}", file=sys.stderr)
            return None
        return access_token(token, info, self.resource)


def access_token(token: str, claims: dict, resource: str) -> AccessToken:
    return AccessToken(
        token=token,
        client_id=claims["client_id"],
        scopes=claims.get("scope", "").split(),
        expires_at=claims.get("exp"),
        resource=resource,
        subject=claims.get("sub"),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--verify", choices=["jwks", "introspection"], required=True)
    parser.add_argument("--introspection-client", default="rs:rs-secret", help="id:secret")
    parser.add_argument("--taskmanager", help="TaskManager's base URL: adds the `tasks` tool")
    args = parser.parse_args()

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    # Connections queue from now on, before uvicorn accepts them.
    listener.listen(128)
    port = listener.getsockname()[1]
    resource = f"http://127.0.0.1:{port}/mcp"
    print(f"port {port}", flush=True)

    # What the operator typed for mcp-auth, e.g. `http://127.0.0.1:3000`.
    mcp_auth_server_url = sys.stdin.readline().strip()
    auth = AuthSettings(
        issuer_url=AnyHttpUrl(mcp_auth_server_url),
        resource_server_url=AnyHttpUrl(resource),
        required_scopes=["mcp:read"],
        validate_token_resource=True,
    )
    # The issuer tokens carry: the URL's serialisation (`http://127.0.0.1:3000/`), the same
    # string the SDK publishes in `authorization_servers`.
    issuer = str(auth.issuer_url)
    if args.verify == "jwks":
        verifier = JwksVerifier(issuer, f"{mcp_auth_server_url}/jwks", resource)
    else:
        client_id, secret = args.introspection_client.split(":", 1)
        verifier = IntrospectionVerifier(
            issuer, f"{mcp_auth_server_url}/introspect", resource, (client_id, secret)
        )

    server = MCPServer("mcp-auth e2e", token_verifier=verifier, auth=auth)

    @server.tool()
    def whoami() -> str:
        """Who the bearer token speaks for."""
        token = get_access_token()
        return f"{token.subject} via {token.client_id}"

    if args.taskmanager:
        credentials = tuple(args.introspection_client.split(":", 1))

        @server.tool()
        async def tasks() -> str:
            """The caller's tasks at TaskManager, fetched as the caller."""
            async with httpx2.AsyncClient(timeout=30) as client:
                exchanged = await client.post(
                    f"{mcp_auth_server_url}/token",
                    auth=credentials,
                    data={
                        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                        "subject_token": get_access_token().token,
                        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
                        "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
                        "audience": "taskmanager",
                    },
                )
                if exchanged.status_code != 200:
                    raise RuntimeError(f"token exchange refused: {exchanged.text}")
                upstream = exchanged.json()["access_token"]
                response = await client.get(
                    f"{args.taskmanager}/api/tasks",
                    headers={"authorization": f"Bearer {upstream}"},
                )
            response.raise_for_status()
            return response.text

    app = server.streamable_http_app()
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    print("ready", flush=True)
    uvicorn.Server(config).run(sockets=[listener])


if __name__ == "__main__":
    main()
