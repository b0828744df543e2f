//! A fake TaskManager: a real HTTP server speaking TaskManager's OAuth API.
//!
//! - `GET /api/oauth/authorize` shows a sign-in and consent form; `POST /api/oauth/authorize`
//!   checks the user's name and password and redirects to the registered `redirect_uri` with
//!   a single-use, 10-minute code bound to the PKCE S256 challenge and the `redirect_uri`.
//! - `POST /api/oauth/token` (form: `client_id`/`client_secret` in the body, `code`,
//!   `redirect_uri`, `code_verifier`) → `{access_token, token_type, expires_in,
//!   refresh_token}`: no identity. Access tokens expire after [`FakeTaskManager::
//!   set_token_lifetime`] (an hour unless set); `grant_type=refresh_token` rotates the
//!   refresh token (each works once) and is counted ([`FakeTaskManager::refreshes`]).
//! - `GET /api/tasks` (Bearer, a live access token) → the user's tasks: the API a resource
//!   server calls as the user.
//! - `GET /api/oauth/verify` (Bearer) → `{valid, client_id, user_id, scopes, expires_in,
//!   token_type}`, `scopes` being a JSON-encoded string as TaskManager sometimes sends it.
//!
//! Errors have TaskManager's shape: `{"detail":{"code":"OAUTH_00N","message":…}}`.
//!
//! For the fault tests, the token endpoint can be made to misbehave ([`TokenFault`]).

use std::collections::HashMap;
use std::convert::Infallible;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use super::pkce_challenge;
use super::site::{self, Answer, Server};

pub const CLIENT_ID: &str = "mcp-auth-at-taskmanager";
pub const CLIENT_SECRET: &str = "tm-client-secret";
pub const USERNAME: &str = "alice";
pub const PASSWORD: &str = "wonderland";
/// alice's id at TaskManager: what our tokens must name as `sub`.
pub const USER_ID: u64 = 4242;
const CODE_LIFETIME: Duration = Duration::from_secs(600);

/// One request seen at the token endpoint.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub client_id: String,
    pub client_secret: String,
    pub code_verifier: String,
    /// Did `code_verifier` match the code's S256 challenge?
    pub verifier_matched: bool,
    pub succeeded: bool,
}

/// How the token endpoint misbehaves.
#[derive(Debug, Clone)]
pub enum TokenFault {
    /// Take the request and never answer.
    Hang,
    /// Answer this instead of a token response.
    Answer {
        status: u16,
        content_type: &'static str,
        body: &'static str,
    },
    /// Promise a token response (`Content-Length`) and end the connection halfway through it.
    Truncated,
}

#[derive(Default)]
struct State {
    /// Our `/oauth/callback`, registered once the host's address is known.
    redirect_uri: String,
    codes: HashMap<String, Code>,
    /// access token → (user id, expiry)
    tokens: HashMap<String, (u64, Instant)>,
    /// refresh token → user id; removed when used
    refresh_tokens: HashMap<String, u64>,
    /// Lifetime of new access tokens; `None`: an hour.
    token_lifetime: Option<Duration>,
    refreshes: usize,
    exchanges: Vec<Exchange>,
    counter: u64,
    token_fault: Option<TokenFault>,
}

struct Code {
    redirect_uri: String,
    challenge: String,
    user_id: u64,
    expires: Instant,
}

/// The running fake; dropping it stops the server.
pub struct FakeTaskManager {
    _server: Server,
    /// `http://127.0.0.1:PORT`: the `taskmanager_oauth_host` setting.
    pub base: String,
    state: Arc<Mutex<State>>,
}

impl FakeTaskManager {
    pub fn start() -> FakeTaskManager {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let server = site::serve(move |req| {
            let state = shared.clone();
            async move { handle(&state, req).await }
        });
        FakeTaskManager {
            base: format!("http://127.0.0.1:{}", server.port),
            _server: server,
            state,
        }
    }

    /// Registers our callback as the client's only redirect URI.
    pub fn register_redirect_uri(&self, uri: &str) {
        self.state.lock().expect("state").redirect_uri = uri.to_string();
    }

    /// Every request the token endpoint has seen.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.state.lock().expect("state").exchanges.clone()
    }

    /// The access tokens issued so far.
    pub fn access_tokens(&self) -> Vec<String> {
        self.state
            .lock()
            .expect("state")
            .tokens
            .keys()
            .cloned()
            .collect()
    }

    /// Access tokens issued from now on live `lifetime`.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.state.lock().expect("state").token_lifetime = Some(lifetime);
    }

    /// How many refresh token grants succeeded.
    pub fn refreshes(&self) -> usize {
        self.state.lock().expect("state").refreshes
    }

    /// Makes the token endpoint misbehave from now on (`None`: behave again).
    pub fn set_token_fault(&self, fault: Option<TokenFault>) {
        self.state.lock().expect("state").token_fault = fault;
    }
}

/// What the server sends: an [`Answer`], or a body that breaks off.
type Sent = Response<BoxBody<Bytes, std::io::Error>>;

async fn handle(state: &Mutex<State>, req: Request<Incoming>) -> Sent {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    if method == Method::POST && path == "/api/oauth/token" {
        let fault = state.lock().expect("state").token_fault.clone();
        if let Some(fault) = fault {
            return misbehave(fault).await;
        }
    }
    answer(state, req)
        .await
        .map(|body| body.map_err(|never: Infallible| match never {}).boxed())
}

async fn answer(state: &Mutex<State>, req: Request<Incoming>) -> Answer {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let body = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return error(StatusCode::BAD_REQUEST, "OAUTH_000", "unreadable body"),
    };
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let mut state = state.lock().expect("state");
    match (method, path.as_str()) {
        (Method::GET, "/api/oauth/authorize") => {
            let params = form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
            match check_authorization(&state, &params) {
                Ok(()) => sign_in_page(&params, None),
                Err(problem) => error(StatusCode::BAD_REQUEST, "OAUTH_001", problem),
            }
        }
        (Method::POST, "/api/oauth/authorize") => approve(&mut state, &form),
        (Method::POST, "/api/oauth/token") => token(&mut state, &form),
        (Method::GET, "/api/oauth/verify") => verify(&state, bearer.as_deref()),
        (Method::GET, "/api/tasks") => tasks(&state, bearer.as_deref()),
        _ => json_answer(StatusCode::NOT_FOUND, json!({"detail": "Not Found"})),
    }
}

async fn misbehave(fault: TokenFault) -> Sent {
    let whole = json!({"access_token": "tma_never_whole", "token_type": "Bearer"}).to_string();
    let (status, content_type, body, length) = match fault {
        TokenFault::Hang => std::future::pending().await,
        TokenFault::Answer {
            status,
            content_type,
            body,
        } => (status, content_type, body, body.len()),
        TokenFault::Truncated => (
            200,
            "application/json",
            &whole[..whole.len() / 2],
            whole.len(),
        ),
    };
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-length", length)
        .body(
            CutShort {
                data: Some(Bytes::copy_from_slice(body.as_bytes())),
                complete: body.len() == length,
                flushed: false,
            }
            .boxed(),
        )
        .expect("response")
}

/// A body of `data` that, when not `complete`, fails after `data` has gone out, so the
/// connection ends short of its `Content-Length`.
struct CutShort {
    data: Option<Bytes>,
    complete: bool,
    /// Whether the server has had a chance to write `data` out.
    flushed: bool,
}

impl Body for CutShort {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if self.complete {
            return Poll::Ready(None);
        }
        if !self.flushed {
            // Pending once: hyper flushes what it holds before polling again.
            self.flushed = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "cut short",
        ))))
    }
}

/// The authorization request's parameters, as the form carries them along.
const AUTHORIZATION_PARAMS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];

/// The authorization request's problem, if any.
fn check_authorization(
    state: &State,
    params: &HashMap<String, String>,
) -> Result<(), &'static str> {
    let get = |name: &str| params.get(name).map(String::as_str).unwrap_or_default();
    if get("response_type") != "code" {
        return Err("response_type must be code");
    }
    if get("client_id") != CLIENT_ID {
        return Err("unknown client_id");
    }
    if state.redirect_uri.is_empty() || get("redirect_uri") != state.redirect_uri {
        return Err("redirect_uri is not registered for this client");
    }
    if get("code_challenge_method") != "S256" || get("code_challenge").len() < 43 {
        return Err("PKCE with S256 is required");
    }
    if get("state").is_empty() {
        return Err("state is required");
    }
    Ok(())
}

fn sign_in_page(params: &HashMap<String, String>, problem: Option<&str>) -> Answer {
    let hidden: String = AUTHORIZATION_PARAMS
        .iter()
        .map(|name| {
            let value = params.get(*name).map(String::as_str).unwrap_or_default();
            format!(
                r#"<input type="hidden" name="{name}" value="{}">"#,
                escape(value)
            )
        })
        .collect();
    let problem = problem.map_or(String::new(), |p| format!("<p class=\"error\">{p}</p>"));
    let html = format!(
        "<!doctype html><title>TaskManager</title><h1>Sign in to TaskManager</h1>{problem}\
         <p>MCP wants to read your tasks.</p>\
         <form method=\"post\" action=\"/api/oauth/authorize\">{hidden}\
         <input name=\"username\"><input type=\"password\" name=\"password\">\
         <button type=\"submit\">Sign in and allow</button></form>"
    );
    let status = if problem.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    };
    Response::builder()
        .status(status)
        .header("content-type", "text/html; charset=utf-8")
        .body(Full::new(Bytes::from(html)))
        .expect("response")
}

fn approve(state: &mut State, form: &HashMap<String, String>) -> Answer {
    if let Err(problem) = check_authorization(state, form) {
        return error(StatusCode::BAD_REQUEST, "OAUTH_001", problem);
    }
    let get = |name: &str| form.get(name).cloned().unwrap_or_default();
    if get("username") != USERNAME || get("password") != PASSWORD {
        return sign_in_page(form, Some("Wrong user name or password."));
    }
    let code = fresh(state, "tmc");
    state.codes.insert(
        code.clone(),
        Code {
            redirect_uri: get("redirect_uri"),
            challenge: get("code_challenge"),
            user_id: USER_ID,
            expires: Instant::now() + CODE_LIFETIME,
        },
    );
    let mut location = url::Url::parse(&get("redirect_uri")).expect("checked redirect_uri");
    location
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &get("state"));
    Response::builder()
        .status(StatusCode::FOUND)
        .header("location", location.as_str())
        .body(Full::default())
        .expect("response")
}

fn token(state: &mut State, form: &HashMap<String, String>) -> Answer {
    let get = |name: &str| form.get(name).cloned().unwrap_or_default();
    let mut exchange = Exchange {
        client_id: get("client_id"),
        client_secret: get("client_secret"),
        code_verifier: get("code_verifier"),
        verifier_matched: false,
        succeeded: false,
    };
    let answer = (|| {
        if get("grant_type") == "refresh_token" {
            return refresh(state, form);
        }
        if get("grant_type") != "authorization_code" {
            return error(
                StatusCode::BAD_REQUEST,
                "OAUTH_005",
                "unsupported grant_type",
            );
        }
        if exchange.client_id != CLIENT_ID || exchange.client_secret != CLIENT_SECRET {
            return error(
                StatusCode::UNAUTHORIZED,
                "OAUTH_002",
                "Invalid client credentials",
            );
        }
        // Single use: the code is gone whatever happens next.
        let Some(code) = state.codes.remove(&get("code")) else {
            return error(
                StatusCode::BAD_REQUEST,
                "OAUTH_003",
                "Invalid authorization code",
            );
        };
        if code.expires < Instant::now() || code.redirect_uri != get("redirect_uri") {
            return error(
                StatusCode::BAD_REQUEST,
                "OAUTH_003",
                "Invalid authorization code",
            );
        }
        exchange.verifier_matched = pkce_challenge(&exchange.code_verifier) == code.challenge;
        if !exchange.verifier_matched {
            return error(
                StatusCode::BAD_REQUEST,
                "OAUTH_004",
                "PKCE verification failed",
            );
        }
        exchange.succeeded = true;
        issue(state, code.user_id)
    })();
    state.exchanges.push(exchange);
    answer
}

/// A token response for `user_id`: a new access token and refresh token.
fn issue(state: &mut State, user_id: u64) -> Answer {
    let lifetime = state.token_lifetime.unwrap_or(Duration::from_secs(3600));
    let access_token = fresh(state, "tma");
    let refresh_token = fresh(state, "tmr");
    state
        .tokens
        .insert(access_token.clone(), (user_id, Instant::now() + lifetime));
    state.refresh_tokens.insert(refresh_token.clone(), user_id);
    json_answer(
        StatusCode::OK,
        json!({"access_token": access_token, "token_type": "Bearer",
               "expires_in": lifetime.as_secs(), "refresh_token": refresh_token}),
    )
}

/// `grant_type=refresh_token` (RFC 6749 §6): our client only, each refresh token once.
fn refresh(state: &mut State, form: &HashMap<String, String>) -> Answer {
    let get = |name: &str| form.get(name).cloned().unwrap_or_default();
    if get("client_id") != CLIENT_ID || get("client_secret") != CLIENT_SECRET {
        return error(
            StatusCode::UNAUTHORIZED,
            "OAUTH_002",
            "Invalid client credentials",
        );
    }
    let Some(user_id) = state.refresh_tokens.remove(&get("refresh_token")) else {
        return json_answer(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_grant", "error_description": "unknown refresh token"}),
        );
    };
    state.refreshes += 1;
    issue(state, user_id)
}

/// The user of a live access token.
fn user_of(state: &State, bearer: Option<&str>) -> Option<u64> {
    let (user_id, expires) = state.tokens.get(bearer?)?;
    (*expires > Instant::now()).then_some(*user_id)
}

/// `GET /api/tasks`: the API as the user.
fn tasks(state: &State, bearer: Option<&str>) -> Answer {
    match user_of(state, bearer) {
        Some(user_id) => json_answer(
            StatusCode::OK,
            json!({"user_id": user_id, "tasks": [{"id": 1, "title": "Feed the cat"}]}),
        ),
        None => error(
            StatusCode::UNAUTHORIZED,
            "OAUTH_006",
            "Invalid or expired token",
        ),
    }
}

fn verify(state: &State, bearer: Option<&str>) -> Answer {
    match user_of(state, bearer) {
        Some(user_id) => json_answer(
            StatusCode::OK,
            json!({
                "valid": true,
                "client_id": CLIENT_ID,
                "user_id": user_id,
                "scopes": "[\"read\"]",
                "expires_in": 3599,
                "token_type": "Bearer",
            }),
        ),
        None => error(
            StatusCode::UNAUTHORIZED,
            "OAUTH_006",
            "Invalid or expired token",
        ),
    }
}

/// A fresh unguessable-enough value for a test double.
fn fresh(state: &mut State, prefix: &str) -> String {
    state.counter += 1;
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("{prefix}_{random:016x}{:04x}", state.counter)
}

fn error(status: StatusCode, code: &str, message: &str) -> Answer {
    json_answer(
        status,
        json!({"detail": {"code": code, "message": message}}),
    )
}

fn json_answer(status: StatusCode, body: Value) -> Answer {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("response")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
