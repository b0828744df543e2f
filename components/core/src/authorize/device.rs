//! `GET|POST /device`: the verification page of the device flow (RFC 8628 §3.3). The user
//! enters the code their device shows, signs in like any other sign-in, then approves or
//! denies on the consent page.

use super::pending::{self, Flow};
use super::{bad_request, csrf, method_not_allowed, unavailable};
use crate::env::Env;
use crate::grants::{self, DeviceStatus};
use crate::http::{Method, Request, Response};
use crate::limits::{self, Limit, Refused};
use crate::pages::{self, escape};
use crate::secret::Secret;

pub fn device_verification(env: &Env, req: &Request) -> Response {
    match req.method {
        // RFC 8628 §3.3.1: `verification_uri_complete` carries the code to prefill.
        Method::Get => {
            let params = req.query_params().unwrap_or_default();
            form(env, req, 200, params.get("user_code"), None)
        }
        Method::Post => submit(env, req),
        _ => method_not_allowed("GET, POST"),
    }
}

fn submit(env: &Env, req: &Request) -> Response {
    let params = match req.form_params() {
        Ok(params) => params,
        Err(err) => return bad_request(&err.description),
    };
    if !csrf::verify(req, &params) {
        return csrf::refused();
    }
    // Every entry counts as a wrong one until it proves right (then it is forgiven), so that
    // concurrent guesses cannot slip past the limits. The session is the CSRF cookie, which
    // `csrf::verify` has just found.
    let session = req.cookie(csrf::COOKIE).unwrap_or_default();
    let counted = match limits::enforce(
        env,
        &[
            (Limit::DeviceFailuresPerSession, session),
            (Limit::DeviceFailuresGlobal, limits::EVERYONE),
        ],
    ) {
        Ok(counted) => counted,
        Err(Refused::TooMany { retry_after }) => return too_many(retry_after),
        Err(Refused::Store(err)) => return unavailable(err),
    };
    let user_code = params.get("user_code").unwrap_or_default();
    match grants::find_by_user_code(env, user_code) {
        Ok(Some((device_key, grant))) if grant.status == DeviceStatus::Pending => {
            counted.into_iter().for_each(|c| limits::forgive(env, c));
            let flow = Flow::Device {
                device_key,
                client_id: grant.client_id,
            };
            pending::begin(env, flow)
        }
        Ok(_) => form(
            env,
            req,
            400,
            Some(user_code),
            Some("That code is not valid or has expired. Check the code on your device."),
        ),
        Err(err) => unavailable(err),
    }
}

/// Too many wrong codes: the user waits for the window to end.
fn too_many(retry_after: u64) -> Response {
    pages::error_page(
        429,
        "Too many attempts",
        "Too many wrong codes were entered. Please wait a few minutes, then try again.",
    )
    .with_header("retry-after", &retry_after.to_string())
}

/// The code entry form, with the browser's CSRF token or a fresh one (double-submit: there
/// is no sign-in yet to store it with).
fn form(
    env: &Env,
    req: &Request,
    status: u16,
    user_code: Option<&str>,
    error: Option<&str>,
) -> Response {
    let token = csrf::existing(req)
        .map(Secret::new)
        .unwrap_or_else(|| Secret::generate(env));
    let error = error
        .map(|e| format!(r#"<p class="error">{}</p>"#, escape(e)))
        .unwrap_or_default();
    let body = format!(
        r#"<p>Enter the code shown on your device.</p>
{error}
<form method="post" action="{action}">
{csrf}
<label for="user_code">Code</label>
<input type="text" id="user_code" name="user_code" value="{code}" autocomplete="off" autocapitalize="characters" required autofocus>
<button type="submit">Continue</button>
</form>"#,
        action = escape(&env.settings.endpoint("/device")),
        csrf = csrf::field(token.expose()),
        code = escape(user_code.unwrap_or_default()),
    );
    csrf::with_cookie(
        pages::page(status, "Connect a device", &body),
        &env.settings,
        token.expose(),
    )
}
