//! CSRF protection of our forms (login, consent, device code): a token travels in a hidden
//! field, and a POST must bring it back.
//!
//! - The forms of a sign-in in progress (login, consent) check it against the token stored
//!   with the pending authorization, whose browser cookie (see [`super::binding`]) the
//!   request must carry too: the cookie is per sign-in, so several sign-ins in one browser
//!   keep their own tokens.
//! - The device code form comes before any sign-in: its token is double-submitted, in the
//!   field and in a cookie (`HttpOnly; SameSite=Strict`), which stays the same across the
//!   browser's device forms so that several can be open at once.

use crate::http::{Params, Request, Response};
use crate::pages;
use crate::secret::constant_time_eq;
use crate::settings::Settings;

pub const COOKIE: &str = "mcp_auth_csrf";

/// The form field holding the token.
pub const FIELD: &str = "csrf";

/// `response` with the double-submit cookie carrying `token` (`Secure` when the issuer is
/// https).
pub fn with_cookie(response: Response, settings: &Settings, token: &str) -> Response {
    let secure = if settings.issuer.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    response.with_header(
        "set-cookie",
        &format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/{secure}"),
    )
}

/// The hidden input carrying `token`.
pub fn field(token: &str) -> String {
    format!(
        r#"<input type="hidden" name="{FIELD}" value="{}">"#,
        pages::escape(token)
    )
}

/// The double-submit token this browser already has, if it looks like one of ours: reused
/// so that a second device form does not invalidate the first.
pub fn existing(req: &Request) -> Option<&str> {
    req.cookie(COOKIE).filter(|t| {
        t.len() == 43
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// Double submit: does the form's token equal the cookie's?
pub fn verify(req: &Request, form: &Params) -> bool {
    match (form.get(FIELD), req.cookie(COOKIE)) {
        (Some(sent), Some(cookie)) => constant_time_eq(sent, cookie),
        _ => false,
    }
}

/// A sign-in's form: does the form's token equal the one stored with the sign-in?
pub fn verify_stored(form: &Params, stored: &str) -> bool {
    form.get(FIELD)
        .is_some_and(|sent| constant_time_eq(sent, stored))
}

/// The page for a form that fails the check.
pub fn refused() -> Response {
    pages::error_page(
        403,
        "Request refused",
        "This form has expired or was not sent from this site. Please go back, reload the page and try again.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    fn post(cookie: Option<&str>) -> Request {
        let req = Request::new(Method::Post, "/consent");
        match cookie {
            Some(c) => req.with_header("cookie", &format!("{COOKIE}={c}")),
            None => req,
        }
    }

    #[test]
    fn form_and_cookie_or_store_must_agree() {
        let form = Params::parse(b"csrf=abc").unwrap();
        assert!(verify(&post(Some("abc")), &form));
        assert!(!verify(&post(Some("abd")), &form));
        assert!(!verify(&post(None), &form));
        assert!(!verify(&post(Some("abc")), &Params::default()));
        assert!(verify_stored(&form, "abc"));
        assert!(!verify_stored(&form, "xyz"));
        assert!(!verify_stored(&Params::default(), "abc"));
    }

    #[test]
    fn only_well_formed_tokens_are_reused() {
        let token = "a".repeat(43);
        assert_eq!(existing(&post(Some(&token))), Some(token.as_str()));
        assert_eq!(existing(&post(Some("short"))), None);
        assert_eq!(existing(&post(Some(&"<".repeat(43)))), None);
        assert_eq!(existing(&post(None)), None);
    }
}
