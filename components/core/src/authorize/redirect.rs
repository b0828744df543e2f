//! The client's redirect URI: which registered one a request means (exact match, but any
//! port on loopback: RFC 8252 §7.3), and sending the user back there (RFC 6749 §4.1.2) with
//! `state` and `iss` (RFC 9207 §2) on every response, errors included.

use crate::client::{self, Client};
use crate::env::{Env, StoreError};
use crate::error::{ErrorCode, OAuthError};
use crate::http::{with_query, Response};
use crate::pages;
use crate::resource::is_loopback_host;

/// The client and the redirect URI an authorization request names, or the page that says
/// why not: such errors are never redirected (RFC 6749 §4.1.2.1), so no one can use us as an
/// open redirector.
pub fn resolve(
    env: &Env,
    client_id: Option<&str>,
    redirect_uri: Option<&str>,
) -> Result<(Client, String), Response> {
    let page = |status, message: &str| pages::error_page(status, "Invalid request", message);
    let Some(client_id) = client_id else {
        return Err(page(
            400,
            "The request names no client (client_id is missing).",
        ));
    };
    let client = match client::find(env, client_id) {
        Ok(Some(client)) => client,
        Ok(None) => return Err(page(400, "The client is unknown (unregistered client_id).")),
        Err(err) if err.code == ErrorCode::TemporarilyUnavailable => {
            return Err(super::unavailable(StoreError(err.description)))
        }
        Err(err) => return Err(page(err.status, &err.description)),
    };
    let registered = &client.metadata.redirect_uris;
    let uri = match (redirect_uri, registered.as_slice()) {
        (Some(sent), _) if registered.iter().any(|r| matches(r, sent)) => sent.to_string(),
        (Some(_), _) => {
            return Err(page(
                400,
                "The redirect_uri is not registered for this client.",
            ))
        }
        (None, [only]) => only.clone(),
        (None, _) => {
            return Err(page(
                400,
                "The redirect_uri is required: this client registered several.",
            ))
        }
    };
    Ok((client, uri))
}

/// Does `sent` name the `registered` redirect URI? Exact string comparison, except that for
/// `http` loopback URIs the port is ignored (RFC 8252 §7.3): native apps pick a free port
/// at run time, and a portless registration matches any.
pub fn matches(registered: &str, sent: &str) -> bool {
    if registered == sent {
        return true;
    }
    let (Ok(registered), Ok(sent)) = (url::Url::parse(registered), url::Url::parse(sent)) else {
        return false;
    };
    let loopback =
        |u: &url::Url| u.scheme() == "http" && u.host_str().is_some_and(is_loopback_host);
    loopback(&registered)
        && loopback(&sent)
        && registered.host_str() == sent.host_str()
        && registered.path() == sent.path()
        && registered.query() == sent.query()
        && registered.fragment().is_none()
        && sent.fragment().is_none()
        && registered.username() == sent.username()
        && registered.password() == sent.password()
}

/// `302` to `redirect_uri` with `params`, the client's `state` when it sent one, and `iss`.
pub fn to_client(
    env: &Env,
    redirect_uri: &str,
    state: Option<&str>,
    params: &[(&str, &str)],
) -> Response {
    let mut pairs = params.to_vec();
    pairs.extend(state.map(|s| ("state", s)));
    pairs.push(("iss", env.settings.issuer.as_str()));
    match with_query(redirect_uri, &pairs) {
        Some(location) => Response::redirect(&location),
        // Registration only accepts absolute URLs; a stored one that is not is our fault.
        None => pages::error_page(
            500,
            "Server error",
            "The client's redirect URI is not a valid URL.",
        ),
    }
}

/// An error for `client`, sent to its (verified) redirect URI only when errors may go there:
/// the operator provisioned the client or a user approved it before (see
/// [`super::approval`]); otherwise the `page`, so that a client anyone registered cannot use
/// us as an open redirector (RFC 9700 §4.11.2). Every error redirect of a sign-in goes
/// through here.
pub fn error_to_trusted_client(
    env: &Env,
    client: &Client,
    redirect_uri: &str,
    state: Option<&str>,
    err: &OAuthError,
    page: impl FnOnce() -> Response,
) -> Response {
    match super::approval::trusts_redirects(env, client) {
        Ok(true) => error_to_client(env, redirect_uri, state, err),
        Ok(false) => page(),
        Err(err) => super::unavailable(err),
    }
}

/// An error response to the client (RFC 6749 §4.1.2.1).
pub fn error_to_client(
    env: &Env,
    redirect_uri: &str,
    state: Option<&str>,
    err: &OAuthError,
) -> Response {
    to_client(
        env,
        redirect_uri,
        state,
        &[
            ("error", err.code.as_str()),
            ("error_description", &err.description),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_ignores_the_port_only() {
        assert!(matches("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb"));
        assert!(matches(
            "http://127.0.0.1:8080/cb",
            "http://127.0.0.1:9090/cb"
        ));
        assert!(matches("http://[::1]/cb", "http://[::1]:5/cb"));
        assert!(matches("http://localhost/cb", "http://localhost:5/cb"));
        assert!(!matches("http://127.0.0.1/cb", "http://127.0.0.1:5/other"));
        assert!(!matches("http://127.0.0.1/cb", "http://localhost:5/cb"));
        assert!(!matches("http://127.0.0.1/cb", "http://127.0.0.1:5/cb?x=1"));
        assert!(!matches("http://127.0.0.1/cb", "https://127.0.0.1:5/cb"));
    }

    #[test]
    fn other_hosts_match_exactly() {
        assert!(matches("https://app.example/cb", "https://app.example/cb"));
        assert!(!matches(
            "https://app.example/cb",
            "https://app.example:8443/cb"
        ));
        assert!(!matches(
            "https://app.example/cb",
            "https://app.example/cb/"
        ));
        assert!(!matches(
            "http://app.example/cb",
            "http://app.example:80/cb"
        ));
        assert!(!matches("https://localhost/cb", "https://localhost:5/cb"));
    }
}
