//! The built-in login page (`upstream_provider = local`): `GET /login?session=…` shows the
//! form, `POST /login` checks it. Users come from `local_users` (`name:PHC-hash`, argon2).
//! With none configured, a development user `demo` / `demo` exists for a loopback issuer
//! and only for browsers on a loopback address: `serve --listen 0.0.0.0:3000` keeps the
//! default loopback issuer, and must not let the network sign in as `demo`.
//!
//! Password guessing is limited three ways, each counted before argon2 runs (see
//! [`crate::limits`]): [`MAX_ATTEMPTS`] per sign-in, and failures per user name and per
//! client address over all sign-ins.

use argon2::{Argon2, PasswordHash, PasswordVerifier};

use crate::authorize::consent::signed_in;
use crate::authorize::pending::redirect_host;
use crate::authorize::pending::{Flow, Pending, Stage};
use crate::authorize::{bad_request, csrf, either, method_not_allowed, unavailable};
use crate::env::Env;
use crate::http::{Method, Request, Response};
use crate::limits::{self, Limit, Refused};
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
    /// The issuer is a loopback URL but the browser is not on a loopback address.
    DemoLoopbackOnly,
    Unconfigured,
}

impl Accounts<'_> {
    /// Who may sign in from the browser that sent `req`.
    fn of<'a>(settings: &'a Settings, req: &Request) -> Accounts<'a> {
        match settings.local_users.as_slice() {
            [] if !settings.issuer_is_loopback() => Accounts::Unconfigured,
            [] if from_loopback(req) => Accounts::Demo,
            [] => Accounts::DemoLoopbackOnly,
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
            Accounts::DemoLoopbackOnly | Accounts::Unconfigured => false,
        }
    }

    /// The page for a server where nobody may sign in from here.
    fn unavailable(&self) -> Option<Response> {
        let why = match self {
            Accounts::Configured(_) | Accounts::Demo => return None,
            Accounts::Unconfigured => {
                "Sign-in is not configured on this server: no local users are set (local_users)."
            }
            Accounts::DemoLoopbackOnly => {
                "No local users are set (local_users). The development user demo is offered only \
                 to a browser on the server's own machine (a loopback address), and this browser \
                 is not: set local_users to sign in from elsewhere."
            }
        };
        Some(pages::error_page(503, "Sign-in is not configured", why))
    }
}

/// Does `req` come from a loopback address? No address known: no.
fn from_loopback(req: &Request) -> bool {
    req.client_addr
        .as_deref()
        .and_then(|addr| addr.parse::<std::net::IpAddr>().ok())
        .is_some_and(|ip| ip.to_canonical().is_loopback())
}

fn show(env: &Env, req: &Request) -> Result<Response, Response> {
    let params = req
        .query_params()
        .map_err(|err| bad_request(&err.description))?;
    let pending = signing_in(env, req, params.get("session"))?;
    form(env, req, &pending, 200, "", None)
}

fn submit(env: &Env, req: &Request) -> Result<Response, Response> {
    let params = req
        .form_params()
        .map_err(|err| bad_request(&err.description))?;
    let pending = signing_in(env, req, params.get("session"))?;
    if !csrf::verify_stored(&params, &pending.record.csrf) {
        return Err(csrf::refused());
    }
    let accounts = Accounts::of(&env.settings, req);
    if let Some(page) = accounts.unavailable() {
        return Err(page);
    }
    let username = params.get("username").unwrap_or_default();
    let password = params.get("password").unwrap_or_default();
    // Every try counts as a failure until it proves right (then it is forgiven), before
    // argon2 runs, so that parallel guesses cannot slip past the limits. The address first:
    // an address over its limit does not eat into the budget of the names it tries.
    let ip = req.client_addr.as_deref().unwrap_or_default();
    let counted = limits::enforce(
        env,
        &[
            (Limit::LoginFailuresPerIp, ip),
            (Limit::LoginFailuresPerUser, username),
        ],
    )
    .map_err(|refused| match refused {
        Refused::TooMany { retry_after } => too_many_failures(retry_after),
        Refused::Store(err) => unavailable(err),
    })?;
    let attempts = pending.count_attempt(env).map_err(unavailable)?;
    if attempts > MAX_ATTEMPTS {
        return Err(pending.discard(env, too_many()));
    }
    if accounts.check(username, password) {
        counted.into_iter().for_each(|c| limits::forgive(env, c));
        if !pending.claim_sign_in(env).map_err(unavailable)? {
            return Err(bad_request("This sign-in has already been completed."));
        }
        return Ok(signed_in(env, pending, Identity::named(username)));
    }
    if attempts == MAX_ATTEMPTS {
        return Err(pending.discard(env, too_many()));
    }
    let left = MAX_ATTEMPTS - attempts;
    let error = format!("Wrong username or password. {left} attempt(s) left.");
    form(env, req, &pending, 400, username, Some(&error))
}

/// The pending authorization a login form belongs to, from its browser, still waiting for
/// sign-in.
fn signing_in(env: &Env, req: &Request, session: Option<&str>) -> Result<Pending, Response> {
    let pending = Pending::find(env, req, session)?;
    if pending.record.stage != Stage::SigningIn {
        return Err(bad_request("You have already signed in for this request."));
    }
    Ok(pending)
}

/// The login form. Like the consent page it says who asks and where the user will be sent:
/// someone may have been handed a login link by a stranger.
fn form(
    env: &Env,
    req: &Request,
    pending: &Pending,
    status: u16,
    username: &str,
    error: Option<&str>,
) -> Result<Response, Response> {
    let accounts = Accounts::of(&env.settings, req);
    if let Some(page) = accounts.unavailable() {
        return Err(page);
    }
    let note = match accounts {
        Accounts::Demo => {
            "<p>Development mode: no users are configured, so sign in as <strong>demo</strong> with password <strong>demo</strong>.</p>"
        }
        _ => "",
    };
    let flow = &pending.record.flow;
    let name = escape(&flow.client_name(env)?);
    let who = match flow {
        Flow::Code(request) => format!(
            r#"<p><strong>{name}</strong> asks you to sign in. Afterwards you will be sent to <span class="host">{}</span>.</p>"#,
            escape(&redirect_host(&request.redirect_uri))
        ),
        Flow::Device { .. } => {
            format!(r#"<p>Sign in to connect a device to <strong>{name}</strong>.</p>"#)
        }
    };
    let error = error
        .map(|e| format!(r#"<p class="error">{}</p>"#, escape(e)))
        .unwrap_or_default();
    let body = format!(
        r#"{who}
{note}
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
    if let Flow::Code(request) = flow {
        if request.skip_consent {
            page = page.with_form_redirect_to(&request.redirect_uri);
        }
    }
    Ok(page)
}

fn too_many() -> Response {
    pages::error_page(
        429,
        "Too many attempts",
        "Too many wrong passwords. Please start again from your application.",
    )
}

/// Too many failures for this user name or from this address, over all sign-ins.
fn too_many_failures(retry_after: u64) -> Response {
    let minutes = retry_after.div_ceil(60);
    pages::error_page(
        429,
        "Too many attempts",
        &format!(
            "Too many failed sign-ins for this account or from your network. Please try again in {minutes} minute(s)."
        ),
    )
    .with_header("retry-after", &retry_after.to_string())
}
