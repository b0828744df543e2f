"""The benchmark's second peer: an authorization server built on the official MCP Python SDK's
auth routes (`mcp.server.auth.routes.create_auth_routes`), in the design of the SDK's example
"simple-auth" server: one in-memory provider behind the SDK's own handlers for metadata
(RFC 8414), dynamic client registration (RFC 7591), the authorization endpoint (code + PKCE),
the token endpoint and revocation, a demo sign-in page, and an RFC 7662 introspection endpoint
for resource servers. Access and refresh tokens are opaque random strings held in memory, as the
example's are: no signature is made or checked anywhere.

Where the example stops short of what the benchmark measures, this provider goes on as the
SDK's provider protocol asks: the code exchange also issues a refresh token, and a refresh grant
rotates both tokens (the old refresh token is gone once used, so each connection of the
benchmark walks its own chain, as it does against mcp-auth).

Environment: PORT (the port uvicorn listens on, 127.0.0.1, which makes the issuer) and RESOURCE
(the MCP server tokens are for). Run it with uvicorn's factory flag, as scripts/bench does:

    uvicorn --factory server:create_app --loop uvloop --http httptools --port $PORT

Besides the SDK's routes, `POST /bench/refresh-tokens?client_id=ID&n=N` signs the demo user in
N times for a registered client and exchanges each code through the provider, exactly as the
token endpoint would, and answers the N refresh tokens and one access token; the benchmark uses
it instead of driving N sign-ins through HTML forms.
"""

import os
import secrets
import time

from pydantic import AnyHttpUrl, AnyUrl
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    OAuthAuthorizationServerProvider,
    RefreshToken,
    TokenError,
    construct_redirect_uri,
)
from mcp.server.auth.routes import cors_middleware, create_auth_routes
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

SCOPES = ["mcp:read", "mcp:write"]
# mcp-auth's defaults: codes 5 minutes, access tokens 1 hour, refresh tokens 30 days.
CODE_SECONDS = 300
ACCESS_SECONDS = 3600
REFRESH_SECONDS = 30 * 24 * 3600
# The example's demo account.
DEMO_USER = ("demo", "demo")


def new_token(prefix: str) -> str:
    """256 bits from the system's CSPRNG, as the example's tokens."""
    return f"{prefix}_{secrets.token_hex(32)}"


class InMemoryProvider(OAuthAuthorizationServerProvider[AuthorizationCode, RefreshToken, AccessToken]):
    """Clients, pending sign-ins, codes and tokens in dictionaries of this one process: what the
    SDK's example keeps, and why the server runs as one uvicorn worker (a second worker would
    not know the first one's tokens)."""

    def __init__(self, issuer: str, resource: str):
        self.issuer = issuer
        self.resource = resource
        self.clients: dict[str, OAuthClientInformationFull] = {}
        self.pending: dict[str, AuthorizationParams] = {}
        self.pending_clients: dict[str, str] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        assert client_info.client_id, "the SDK's registration handler mints the client_id"
        self.clients[client_info.client_id] = client_info

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        """Keeps the validated request under a fresh state of our own and sends the browser
        to the sign-in page (the client's `state` goes back to it with the code)."""
        pending = secrets.token_urlsafe(16)
        self.pending[pending] = params
        self.pending_clients[pending] = client.client_id or ""
        return f"{self.issuer}/login?pending={pending}"

    def sign_in(self, pending: str, username: str, password: str) -> str:
        """The redirect back to the client with a code, once the demo user signed in."""
        params = self.pending.pop(pending, None)
        client_id = self.pending_clients.pop(pending, None)
        if params is None or client_id is None:
            raise AuthorizeError("invalid_request", "unknown or finished sign-in")
        if (username, password) != DEMO_USER:
            raise AuthorizeError("access_denied", "wrong username or password")
        code = self.issue_code(client_id, params, subject=username)
        return construct_redirect_uri(str(params.redirect_uri), code=code.code, state=params.state)

    def issue_code(self, client_id: str, params: AuthorizationParams, subject: str) -> AuthorizationCode:
        code = AuthorizationCode(
            code=new_token("code"),
            scopes=params.scopes or SCOPES,
            expires_at=time.time() + CODE_SECONDS,
            client_id=client_id,
            code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource or self.resource,
            subject=subject,
        )
        self.codes[code.code] = code
        return code

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        return self.codes.get(authorization_code)

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        """One use per code: a second exchange finds nothing."""
        if self.codes.pop(authorization_code.code, None) is None:
            raise TokenError("invalid_grant", "authorization code already used")
        return self.issue_tokens(authorization_code.client_id, authorization_code.scopes,
                                 authorization_code.resource, authorization_code.subject)

    def issue_tokens(self, client_id: str, scopes: list[str], resource: str | None,
                     subject: str | None) -> OAuthToken:
        now = int(time.time())
        access = AccessToken(token=new_token("at"), client_id=client_id, scopes=scopes,
                             expires_at=now + ACCESS_SECONDS, resource=resource, subject=subject)
        refresh = RefreshToken(token=new_token("rt"), client_id=client_id, scopes=scopes,
                               expires_at=now + REFRESH_SECONDS, resource=resource, subject=subject)
        self.access_tokens[access.token] = access
        self.refresh_tokens[refresh.token] = refresh
        return OAuthToken(access_token=access.token, token_type="Bearer", expires_in=ACCESS_SECONDS,
                          scope=" ".join(scopes), refresh_token=refresh.token)

    async def load_access_token(self, token: str) -> AccessToken | None:
        access = self.access_tokens.get(token)
        if access is None:
            return None
        if access.expires_at is not None and access.expires_at < time.time():
            del self.access_tokens[token]
            return None
        return access

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> RefreshToken | None:
        # The token handler compares the owner with the authenticated client itself.
        return self.refresh_tokens.get(refresh_token)

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        """Rotation: the presented refresh token is spent and a new pair replaces it."""
        if self.refresh_tokens.pop(refresh_token.token, None) is None:
            raise TokenError("invalid_grant", "refresh token already used")
        return self.issue_tokens(refresh_token.client_id, scopes, refresh_token.resource, refresh_token.subject)

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        self.access_tokens.pop(token.token, None)
        self.refresh_tokens.pop(token.token, None)


LOGIN_PAGE = """<!DOCTYPE html>
<html><head><title>Sign in</title></head><body>
<form action="/login" method="post">
<input type="hidden" name="pending" value="{pending}">
<label>Username <input name="username"></label>
<label>Password <input name="password" type="password"></label>
<button type="submit">Sign in</button>
</form></body></html>
"""


def sign_in_routes(provider: InMemoryProvider) -> list[Route]:
    """The example's demo sign-in: a form, and its submission that ends in the code."""

    async def page(request: Request) -> Response:
        pending = request.query_params.get("pending", "")
        if pending not in provider.pending:
            return JSONResponse({"error": "invalid_request", "error_description": "unknown sign-in"}, 400)
        # Our own token_urlsafe value, so nothing in it needs escaping.
        return HTMLResponse(LOGIN_PAGE.format(pending=pending))

    async def submit(request: Request) -> Response:
        form = await request.form()
        fields = [form.get(name) for name in ("pending", "username", "password")]
        if not all(isinstance(field, str) for field in fields):
            return JSONResponse({"error": "invalid_request", "error_description": "missing field"}, 400)
        try:
            return RedirectResponse(provider.sign_in(*fields), status_code=302)
        except AuthorizeError as e:
            return JSONResponse({"error": e.error, "error_description": e.error_description}, 400)

    return [Route("/login", page, methods=["GET"]), Route("/login", submit, methods=["POST"])]


def introspection_route(provider: InMemoryProvider) -> Route:
    """RFC 7662 for resource servers, as the example answers it (it asks no credentials of the
    caller: the benchmark's request carries some all the same, which this ignores)."""

    async def introspect(request: Request) -> Response:
        form = await request.form()
        token = form.get("token")
        if not isinstance(token, str) or not token:
            return JSONResponse({"error": "invalid_request", "error_description": "missing token"}, 400)
        access = await provider.load_access_token(token)
        if access is None:
            return JSONResponse({"active": False})
        return JSONResponse({
            "active": True,
            "client_id": access.client_id,
            "scope": " ".join(access.scopes),
            "exp": access.expires_at,
            "token_type": "Bearer",
            "aud": access.resource,
            "sub": access.subject,
            "iss": provider.issuer,
        })

    return Route("/introspect", cors_middleware(introspect, ["POST", "OPTIONS"]), methods=["POST", "OPTIONS"])


def bench_route(provider: InMemoryProvider) -> Route:
    """`POST /bench/refresh-tokens?client_id=ID&n=N`: N sign-ins of the demo user and their code
    exchanges, through the provider's own methods."""

    async def seed(request: Request) -> Response:
        client = await provider.get_client(request.query_params.get("client_id", ""))
        if client is None or not client.redirect_uris:
            return JSONResponse({"error": "invalid_client"}, 400)
        params = AuthorizationParams(
            state=None,
            scopes=SCOPES,
            code_challenge=secrets.token_urlsafe(32),
            redirect_uri=AnyUrl(str(client.redirect_uris[0])),
            redirect_uri_provided_explicitly=True,
            resource=provider.resource,
        )
        issued = []
        for _ in range(int(request.query_params.get("n", "1"))):
            code = provider.issue_code(client.client_id or "", params, subject=DEMO_USER[0])
            issued.append(await provider.exchange_authorization_code(client, code))
        return JSONResponse({
            "refresh_tokens": [tokens.refresh_token for tokens in issued],
            "access_token": issued[-1].access_token if issued else None,
        })

    return Route("/bench/refresh-tokens", seed, methods=["POST"])


def create_app() -> Starlette:
    """The application uvicorn serves (`--factory server:create_app`)."""
    issuer = f"http://127.0.0.1:{int(os.environ['PORT'])}"
    provider = InMemoryProvider(issuer, os.environ.get("RESOURCE", "http://127.0.0.1:8001/mcp"))
    routes = create_auth_routes(
        provider=provider,
        issuer_url=AnyHttpUrl(issuer),
        client_registration_options=ClientRegistrationOptions(
            enabled=True, valid_scopes=SCOPES, default_scopes=SCOPES
        ),
        revocation_options=RevocationOptions(enabled=True),
    )
    routes += sign_in_routes(provider)
    routes += [introspection_route(provider), bench_route(provider)]
    return Starlette(routes=routes)
