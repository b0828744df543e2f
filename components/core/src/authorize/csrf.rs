//! CSRF protection of our forms (login, consent, device code): the token travels in a
//! hidden field and in a cookie (`HttpOnly; SameSite=Strict`), and, for a sign-in in
//! progress, is also stored with the pending authorization. A POST must carry all of them,
//! equal.

use crate::http::{Params, Request, Response};
use crate::pages;
use crate::secret::constant_time_eq;
use crate::settings::Settings;

pub const COOKIE: &str = "mcp_auth_csrf";

/// The form field holding the token.
pub const FIELD: &str = "csrf";

/// `response` with the cookie carrying `token` (`Secure` when the issuer is https).
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

/// Does the form's token equal the cookie's, and the stored one when there is one?
pub fn verify(req: &Request, form: &Params, stored: Option<&str>) -> bool {
    let (Some(sent), Some(cookie)) = (form.get(FIELD), req.cookie(COOKIE)) else {
        return false;
    };
    constant_time_eq(sent, cookie) && stored.is_none_or(|stored| constant_time_eq(sent, stored))
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
    fn form_cookie_and_store_must_agree() {
        let form = Params::parse(b"csrf=abc").unwrap();
        assert!(verify(&post(Some("abc")), &form, Some("abc")));
        assert!(verify(&post(Some("abc")), &form, None));
        assert!(!verify(&post(Some("abd")), &form, Some("abc")));
        assert!(!verify(&post(Some("abc")), &form, Some("xyz")));
        assert!(!verify(&post(None), &form, Some("abc")));
        assert!(!verify(&post(Some("abc")), &Params::default(), Some("abc")));
    }
}
