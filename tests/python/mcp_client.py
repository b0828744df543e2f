"""An MCP client for the end-to-end tests: the official Python SDK's OAuthClientProvider, unmodified,
calling a tool of a protected MCP server (`whoami` unless `--tool` names another) twice, with a
refresh in between.

The SDK does discovery (RFC 9728 from the server's 401, then RFC 8414), registration, PKCE, the
authorization request with `resource` (RFC 8707), the token request and the refresh. The user's
part is the test's: over a line protocol on stdin/stdout the test's browser gets each
authorization URL and answers with the URL mcp-auth redirected it to.
  stdout `authorize URL`   the SDK's redirect handler
  stdin   REDIRECT_URL     the callback handler's answer (code, state, iss)
  stdout `result JSON`     what happened, for the test to check
"""

import argparse
import json
import sys
import time
from urllib.parse import parse_qs, urlparse

import anyio
import httpx2
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.utils import should_use_client_metadata_url
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

# What a client hosting its metadata document on https would pass; the SDK accepts only https
# there, so the test's loopback http document is given to the SDK as pre-registered client
# information instead (see `main`), and this one only asks the SDK whether it would use CIMD.
HTTPS_METADATA_URL = "https://client.invalid/mcp-client.json"


class MemoryStorage:
    """The SDK's TokenStorage, in memory; it also keeps every token set it was given."""

    def __init__(self, client_info: OAuthClientInformationFull | None):
        self.client_info = client_info
        self.history: list[OAuthToken] = []

    async def get_tokens(self) -> OAuthToken | None:
        return self.history[-1] if self.history else None

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.history.append(tokens)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


async def open_in_browser(url: str) -> None:
    print(f"authorize {url}", flush=True)


async def wait_for_callback() -> AuthorizationCodeResult:
    line = await anyio.to_thread.run_sync(sys.stdin.readline)
    params = {k: v[0] for k, v in parse_qs(urlparse(line.strip()).query).items()}
    return AuthorizationCodeResult(code=params["code"], state=params.get("state"), iss=params.get("iss"))


async def call(server: str, auth: OAuthClientProvider, tool: str) -> str:
    async with httpx2.AsyncClient(auth=auth, timeout=30) as http:
        async with streamable_http_client(server, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool(tool, {})
    if result.is_error:
        raise RuntimeError(f"{tool} failed: {result}")
    return result.content[0].text


async def run(args: argparse.Namespace) -> dict:
    metadata = OAuthClientMetadata(
        client_name="Python SDK e2e",
        redirect_uris=[args.redirect_uri],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )
    client_info = None
    if args.client_id_url:
        # A URL client_id (Client ID Metadata Document): the URL is the whole registration.
        client_info = OAuthClientInformationFull(
            client_id=args.client_id_url,
            token_endpoint_auth_method="none",
            redirect_uris=[args.redirect_uri],
        )
    storage = MemoryStorage(client_info)
    auth = OAuthClientProvider(
        server_url=args.server,
        client_metadata=metadata,
        storage=storage,
        redirect_handler=open_in_browser,
        callback_handler=wait_for_callback,
    )
    first = await call(args.server, auth, args.tool)
    # Wait out the access token (the host's access_token_lifetime is short): the SDK refreshes
    # before its next request (OAuth 2.1 §4.3).
    expiry = auth.context.token_expiry_time
    if expiry is None:
        raise RuntimeError("the token response had no expires_in")
    await anyio.sleep(max(0.0, expiry - time.time()) + 1)
    second = await call(args.server, auth, args.tool)
    return {
        "client_id": storage.client_info.client_id,
        "whoami": [first, second],
        "tokens": [t.model_dump(mode="json") for t in storage.history],
        "would_use_cimd": should_use_client_metadata_url(auth.context.oauth_metadata, HTTPS_METADATA_URL),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True, help="the MCP server's URL")
    parser.add_argument("--redirect-uri", required=True)
    parser.add_argument("--client-id-url", help="a Client ID Metadata Document URL to use as client_id")
    parser.add_argument("--tool", default="whoami", help="the tool to call")
    args = parser.parse_args()
    result = anyio.run(run, args)
    print(f"result {json.dumps(result)}", flush=True)


if __name__ == "__main__":
    main()
