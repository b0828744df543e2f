// The MCP Inspector's browser OAuth flow, as the Inspector's web client runs it: the official
// TypeScript SDK's `auth()` with a provider kept in sessionStorage, on a page of its own origin
// (the Inspector's is http://localhost:6274). Bundled for the browser by the e2e test
// (tests/tests/e2e/inspector.rs) with esbuild; the same page serves as the redirect URI.
//
// /inspector?server=URL  discovers, registers and sends the browser to /authorize;
// /oauth/callback?code=  exchanges the code, then refreshes, and reports in #result.
import { auth } from "@modelcontextprotocol/sdk/client/auth.js";

const store = window.sessionStorage;
const load = (name) => {
  const value = store.getItem(`inspector:${name}`);
  return value === null ? undefined : JSON.parse(value);
};
const save = (name, value) => store.setItem(`inspector:${name}`, JSON.stringify(value));

// What the Inspector's InspectorOAuthClientProvider declares and keeps.
class InspectorProvider {
  get redirectUrl() {
    return `${window.location.origin}/oauth/callback`;
  }
  get clientMetadata() {
    return {
      redirect_uris: [this.redirectUrl],
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      client_name: "MCP Inspector",
      client_uri: "https://github.com/modelcontextprotocol/inspector",
    };
  }
  clientInformation() {
    return load("client");
  }
  saveClientInformation(info) {
    save("client", info);
  }
  tokens() {
    return load("tokens");
  }
  saveTokens(tokens) {
    save("tokens", tokens);
  }
  redirectToAuthorization(url) {
    window.location.href = url.href;
  }
  saveCodeVerifier(verifier) {
    save("verifier", verifier);
  }
  codeVerifier() {
    return load("verifier");
  }
}

function report(result) {
  document.getElementById("result").textContent = JSON.stringify(result);
  document.title = result.error ? "failed" : "done";
}

async function run() {
  const params = new URLSearchParams(window.location.search);
  const provider = new InspectorProvider();
  if (window.location.pathname === "/oauth/callback") {
    const serverUrl = load("server");
    const code = params.get("code");
    if (!code) {
      throw new Error(`the authorization failed: ${params.get("error")}: ${params.get("error_description")}`);
    }
    const exchanged = await auth(provider, { serverUrl, authorizationCode: code });
    const first = provider.tokens();
    // With a refresh token in hand, auth() refreshes (what the Inspector does on reconnect).
    const refreshed = await auth(provider, { serverUrl });
    report({
      exchanged,
      refreshed,
      iss: params.get("iss"),
      client: provider.clientInformation(),
      first,
      second: provider.tokens(),
    });
  } else {
    const serverUrl = params.get("server");
    save("server", serverUrl);
    const started = await auth(provider, { serverUrl });
    if (started !== "REDIRECT") {
      throw new Error(`expected a redirect to the authorization server, got ${started}`);
    }
  }
}

run().catch((error) => report({ error: String((error && error.stack) || error) }));
