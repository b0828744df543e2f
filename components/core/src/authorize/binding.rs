//! The browser binding of a sign-in: only the browser that started a sign-in may continue it.
//!
//! The id of a pending authorization travels in URLs (`/login?session=…`, our `state` at the
//! upstream provider), so knowing it must prove nothing. Otherwise whoever starts a sign-in
//! can send its login link to a victim, and approve consent after the victim has signed in:
//! the code, issued for the victim, goes to the attacker's redirect URI. So [`super::pending::begin`]
//! sets a cookie holding a fresh secret whose hash is kept in the pending record, and every
//! later step (login page and form, upstream callback, consent, the device flow's sign-in)
//! requires it; RFC 6749 §10.12 asks the same of a client's `state` at its callback.
//!
//! The cookie:
//! - has a name per sign-in (from the hash of its id), so that one browser can run several
//!   sign-ins at once (editors authorize several servers in parallel);
//! - is `SameSite=Lax`: the return from the upstream provider to `/oauth/callback` is a
//!   cross-site top-level GET, which `Strict` would send without it; `Lax` still keeps it off
//!   cross-site POSTs;
//! - is `HttpOnly`, lives as long as the sign-in (`session_timeout`), and is cleared when
//!   the sign-in ends;
//! - on an https issuer is `Secure` with the `__Host-` prefix (RFC 6265bis §4.1.3.2), so that a
//!   sibling subdomain cannot set it. `__Host-` requires `Path=/`; we use `Path=/` on http
//!   too (a path is no boundary within one origin).

use crate::http::{Request, Response};
use crate::pages;
use crate::secret::{hash, verify_hash, Secret};
use crate::settings::Settings;

/// The name of the cookie binding sign-in `id`.
fn cookie_name(settings: &Settings, id: &str) -> String {
    let prefix = if is_https(settings) { "__Host-" } else { "" };
    // 64 bits of the id's hash: unique among one browser's sign-ins, and the id stays secret.
    format!("{prefix}mcp_auth_flow_{}", &hash(id)[..16])
}

fn is_https(settings: &Settings) -> bool {
    settings.issuer.starts_with("https://")
}

/// `response` setting the cookie that binds sign-in `id` to this browser with `secret`.
pub fn set_cookie(response: Response, settings: &Settings, id: &str, secret: &Secret) -> Response {
    let attributes = format!("Max-Age={}", settings.session_timeout);
    with_cookie(response, settings, id, secret.expose(), &attributes)
}

/// `response` clearing the cookie of sign-in `id` (the sign-in has ended).
pub fn clear_cookie(response: Response, settings: &Settings, id: &str) -> Response {
    with_cookie(response, settings, id, "", "Max-Age=0")
}

fn with_cookie(
    response: Response,
    settings: &Settings,
    id: &str,
    value: &str,
    lifetime: &str,
) -> Response {
    let secure = if is_https(settings) { "; Secure" } else { "" };
    response.with_header(
        "set-cookie",
        &format!(
            "{}={value}; {lifetime}; HttpOnly; SameSite=Lax; Path=/{secure}",
            cookie_name(settings, id)
        ),
    )
}

/// Does `req` carry the cookie of sign-in `id`, with the secret that hashes to `stored_hash`?
pub fn holds(req: &Request, settings: &Settings, id: &str, stored_hash: &str) -> bool {
    req.cookie(&cookie_name(settings, id))
        .is_some_and(|secret| verify_hash(secret, stored_hash))
}

/// The page for a step of a sign-in sent from another browser (or with the cookie gone).
pub fn refused() -> Response {
    pages::error_page(
        403,
        "Sign-in refused",
        "This sign-in was started in another browser, or this browser no longer has its cookie. \
         Please start again from your application.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;
    use crate::testing::MapConfig;

    fn settings(issuer: &str) -> Settings {
        Settings::from_config(&MapConfig::from([("mcp_auth_server_url", issuer)])).unwrap()
    }

    /// The `name=value` part of the cookie a response sets.
    fn cookie_of(response: &Response) -> String {
        let set = response.header("set-cookie").unwrap();
        set.split(';').next().unwrap().to_string()
    }

    #[test]
    fn only_the_secret_of_the_same_sign_in_holds() {
        let s = settings("http://127.0.0.1:3000");
        let secret = Secret::new("s3cret");
        let cookie = cookie_of(&set_cookie(Response::new(302), &s, "id-1", &secret));
        let with = |cookie: &str| Request::new(Method::Get, "/login").with_header("cookie", cookie);
        assert!(holds(&with(&cookie), &s, "id-1", &hash("s3cret")));
        assert!(!holds(&with(&cookie), &s, "id-2", &hash("s3cret")));
        assert!(!holds(&with(&cookie), &s, "id-1", &hash("other")));
        assert!(!holds(&with("a=b"), &s, "id-1", &hash("s3cret")));
    }

    #[test]
    fn cookie_attributes() {
        let secret = Secret::new("x");
        let http = set_cookie(
            Response::new(302),
            &settings("http://127.0.0.1:3000"),
            "i",
            &secret,
        );
        let set = http.header("set-cookie").unwrap();
        assert!(set.starts_with("mcp_auth_flow_"), "{set}");
        assert!(set.contains("; Max-Age=600; HttpOnly; SameSite=Lax; Path=/"));
        assert!(!set.contains("Secure"));
        let https = settings("https://as.example");
        let set = set_cookie(Response::new(302), &https, "i", &secret);
        let set = set.header("set-cookie").unwrap();
        assert!(set.starts_with("__Host-mcp_auth_flow_") && set.ends_with("; Secure"));
        let cleared = clear_cookie(Response::new(302), &https, "i");
        let cleared = cleared.header("set-cookie").unwrap();
        assert!(cleared.starts_with(&format!("{}=;", cookie_name(&https, "i"))));
        assert!(cleared.contains("Max-Age=0"));
    }
}
