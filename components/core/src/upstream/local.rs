//! The built-in login page (`upstream_provider = local`): `GET /login?session=…` shows the
//! form, `POST /login` checks it. Users come from `local_users` (`name:PHC-hash`, argon2);
//! with none configured on a loopback issuer, a development user `demo` / `demo` exists.

use argon2::{Argon2, PasswordHash, PasswordVerifier};

use crate::authorize::consent::signed_in;
use crate::authorize::pending::{Flow, Pending, Stage};
use crate::authorize::{bad_request, csrf, either, method_not_allowed, unavailable};
use crate::env::Env;
use crate::http::{Method, Request, Response};
use crate::pages::{self, escape};
use crate::secret::constant_time_eq;
use crate::settings::{Provider, Settings};
use crate::upstream::Identity;

/// Password tries per sign-in; after the last wrong one the sign-in is dead.
pub const MAX_ATTEMPTS: i64 = 5;

/// The development user of an unconfigured loopback deployment.
const DEMO_USER: &str = "demo";
const DEMO_PASSWORD: &str = "demo";

/// Where `/authorize` sends the user to sign in.
pub fn login_url(settings: &Settings, session: &str) -> String {
    format!("{}?session={session}", settings.endpoint("/login"))
}

/// `GET|POST /login`.
pub fn login(env: &Env, req: &Request) -> Response {
    if env.settings.provider != Provider::Local {
        return pages::error_page(
            404,
            "Not found",
            "Sign-in happens at the identity provider.",
        );
    }
    match req.method {
        Method::Get => either(show(env, req)),
        Method::Post => either(submit(env, req)),
        _ => method_not_allowed("GET, POST"),
    }
}

/// Who may sign in.
enum Accounts<'a> {
    Configured(&'a [(String, String)]),
    Demo,
    Unconfigured,
}

impl Accounts<'_> {
    fn of(settings: &Settings) -> Accounts<'_> {
        match settings.local_users.as_slice() {
            [] if settings.issuer_is_loopback() => Accounts::Demo,
            [] => Accounts::Unconfigured,
            users => Accounts::Configured(users),
        }
    }

    /// Is `password` the password of `username`? An unknown name costs the same argon2
    /// work as a known one, so timing does not tell which names exist.
    fn check(&self, username: &str, password: &str) -> bool {
        match self {
            Accounts::Configured(users) => {
                let known = users.iter().find(|(name, _)| name == username);
                let Some((_, phc)) = known.or(users.first()) else {
                    return false;
                };
                let verified = PasswordHash::new(phc).is_ok_and(|hash| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &hash)
                        .is_ok()
                });
                verified && known.is_some()
            }
            Accounts::Demo => {
                constant_time_eq(username, DEMO_USER) & constant_time_eq(password, DEMO_PASSWORD)
            }
            Accounts::Unconfigured => false,
        }
    }
}

fn show(env: &Env, req: &Request) -> Result<Response, Response> {
    let params = req
        .query_params()
        .map_err(|err| bad_request(&err.description))?;
    let pending = signing_in(env, params.get("session"))?;
    Ok(form(env, &pending, 200, "", None))
}

fn submit(env: &Env, req: &Request) -> Result<Response, Response> {
    let params = req
        .form_params()
        .map_err(|err| bad_request(&err.description))?;
    let pending = signing_in(env, params.get("session"))?;
    if !csrf::verify(req, &params, Some(&pending.record.csrf)) {
        return Err(csrf::refused());
    }
    let accounts = Accounts::of(&env.settings);
    if let Accounts::Unconfigured = accounts {
        return Err(not_configured());
    }
    // Counted before checking, so parallel guesses cannot exceed the limit.
    let attempts = pending.count_attempt(env).map_err(unavailable)?;
    if attempts > MAX_ATTEMPTS {
        pending.discard(env);
        return Err(too_many());
    }
    let username = params.get("username").unwrap_or_default();
    let password = params.get("password").unwrap_or_default();
    if accounts.check(username, password) {
        if !pending.claim_sign_in(env).map_err(unavailable)? {
            return Err(bad_request("This sign-in has already been completed."));
        }
        return Ok(signed_in(env, pending, Identity::named(username)));
    }
    if attempts == MAX_ATTEMPTS {
        pending.discard(env);
        return Err(too_many());
    }
    let left = MAX_ATTEMPTS - attempts;
    let error = format!("Wrong username or password. {left} attempt(s) left.");
    Ok(form(env, &pending, 400, username, Some(&error)))
}

/// The pending authorization a login form belongs to, still waiting for sign-in.
fn signing_in(env: &Env, session: Option<&str>) -> Result<Pending, Response> {
    let pending = Pending::find(env, session)?;
    if pending.record.stage != Stage::SigningIn {
        return Err(bad_request("You have already signed in for this request."));
    }
    Ok(pending)
}

fn form(
    env: &Env,
    pending: &Pending,
    status: u16,
    username: &str,
    error: Option<&str>,
) -> Response {
    let accounts = Accounts::of(&env.settings);
    let note = match accounts {
        Accounts::Unconfigured => return not_configured(),
        Accounts::Demo => {
            "<p>Development mode: no users are configured, so sign in as <strong>demo</strong> with password <strong>demo</strong>.</p>"
        }
        Accounts::Configured(_) => "",
    };
    let error = error
        .map(|e| format!(r#"<p class="error">{}</p>"#, escape(e)))
        .unwrap_or_default();
    let body = format!(
        r#"{note}
{error}
<form method="post" action="{action}">
<input type="hidden" name="session" value="{session}">
{csrf}
<label for="username">Username</label>
<input type="text" id="username" name="username" value="{username}" autocomplete="username" required autofocus>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>"#,
        action = escape(&env.settings.endpoint("/login")),
        session = escape(&pending.id),
        csrf = csrf::field(&pending.record.csrf),
        username = escape(username),
    );
    let mut page = pages::page(status, "Sign in", &body);
    // Without consent, signing in sends the user straight to the client.
    if let Flow::Code(request) = &pending.record.flow {
        if request.skip_consent {
            page = page.with_form_redirect_to(&request.redirect_uri);
        }
    }
    csrf::with_cookie(page, &env.settings, &pending.record.csrf)
}

fn not_configured() -> Response {
    pages::error_page(
        503,
        "Sign-in is not configured",
        "Sign-in is not configured on this server: no local users are set (local_users).",
    )
}

fn too_many() -> Response {
    pages::error_page(
        429,
        "Too many attempts",
        "Too many wrong passwords. Please start again from your application.",
    )
}
