//! After sign-in: the allow-list, consent, and the outcome — a code sent to the client
//! (RFC 6749 §4.1.2) or a device grant decided (RFC 8628 §3.3).

use super::pending::{redirect_host, Flow, Pending, Stage};
use super::{approval, bad_request, csrf, either, method_not_allowed, redirect, unavailable};
use crate::audit::{AuditEvent, AuditKind};
use crate::env::Env;
use crate::error::{ErrorCode, OAuthError};
use crate::grants::{self, AuthorizationCode, DeviceGrant, DeviceStatus};
use crate::http::{Method, Request, Response};
use crate::pages::{self, escape};
use crate::records;
use crate::secret::{hash, Secret};
use crate::upstream::{self, Identity};
use crate::upstream_tokens;

/// Continue a sign-in now that the user is known as `sub` (after the upstream callback or
/// the local login, which have claimed the sign-in): refuse users not on the allow-list,
/// then ask for consent (always for a device, RFC 8628 §5.4) or issue the code.
pub fn signed_in(env: &Env, mut pending: Pending, user: Identity) -> Response {
    let client_id = pending.record.flow.client_id().to_string();
    let sub = user.sub.clone();
    let event = |kind| {
        AuditEvent::new(kind, env.now())
            .client(&client_id)
            .sub(&sub)
    };
    if let Some(allowed) = &env.settings.allowed_users {
        if !allowed
            .iter()
            .any(|entry| upstream::same_user(&env.settings.provider, entry, &user))
        {
            env.audit(event(AuditKind::SignInRefused).reason("not in allowed_users"));
            return pending.discard(
                env,
                pages::error_page(
                    403,
                    "Access refused",
                    &format!(
                        "The account `{}` may not use this server.",
                        user.username.as_deref().unwrap_or(&sub)
                    ),
                ),
            );
        }
    }
    env.audit(event(AuditKind::SignIn));
    let auth_time = env.now();
    // A device is always asked about (RFC 8628 §5.4); a code only when it may not be skipped.
    if matches!(&pending.record.flow, Flow::Code(request) if request.skip_consent) {
        return finish(env, &pending, &user, auth_time, Decision::Approve);
    }
    let stage = Stage::AwaitingConsent {
        sub,
        auth_time,
        username: user.username,
    };
    if let Err(err) = pending.advance(env, stage) {
        return unavailable(err);
    }
    either(consent_page(env, &pending))
}

/// `POST /consent`: the user's decision, once.
pub fn consent(env: &Env, req: &Request) -> Response {
    if req.method != Method::Post {
        return method_not_allowed("POST");
    }
    either(decide(env, req))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Approve,
    Deny,
}

fn decide(env: &Env, req: &Request) -> Result<Response, Response> {
    let params = req
        .form_params()
        .map_err(|err| bad_request(&err.description))?;
    let pending = Pending::find(env, req, params.get("session"))?;
    let Stage::AwaitingConsent {
        sub,
        auth_time,
        username,
    } = &pending.record.stage
    else {
        return Err(bad_request(
            "There is nothing to decide yet: please sign in first.",
        ));
    };
    if !csrf::verify_stored(&params, &pending.record.csrf) {
        return Err(csrf::refused());
    }
    let decision = match params.get("decision") {
        Some("approve") => Decision::Approve,
        Some("deny") => Decision::Deny,
        _ => return Err(bad_request("Please choose Approve or Deny.")),
    };
    if !pending.claim_decision(env).map_err(unavailable)? {
        return Err(bad_request("This request has already been decided."));
    }
    if let (Decision::Approve, Flow::Code(request)) = (decision, &pending.record.flow) {
        approval::record(env, &request.client_id);
    }
    let user = Identity {
        sub: sub.clone(),
        username: username.clone(),
    };
    Ok(finish(env, &pending, &user, *auth_time, decision))
}

/// Carry out the decision and forget the pending authorization.
fn finish(
    env: &Env,
    pending: &Pending,
    user: &Identity,
    auth_time: u64,
    decision: Decision,
) -> Response {
    let response = match &pending.record.flow {
        Flow::Code(request) => {
            let state = request.state.as_deref();
            if decision == Decision::Deny {
                let err = OAuthError::new(ErrorCode::AccessDenied, "the user denied the request");
                redirect::error_to_client(env, &request.redirect_uri, state, &err)
            } else {
                let grant = AuthorizationCode {
                    client_id: request.client_id.clone(),
                    // As sent: empty when the request relied on the only registered URI.
                    redirect_uri: if request.redirect_uri_sent {
                        request.redirect_uri.clone()
                    } else {
                        String::new()
                    },
                    code_challenge: request.code_challenge.clone(),
                    resource: request.resource.clone(),
                    scope: request.scope.clone(),
                    sub: user.sub.clone(),
                    auth_time,
                    username: user.username.clone(),
                };
                let family = |code: &Secret| hash(code.expose());
                match grants::issue_code(env, &grant) {
                    Ok(code) => match keep_upstream(env, pending, &family(&code), &grant.client_id)
                    {
                        Ok(()) => redirect::to_client(
                            env,
                            &request.redirect_uri,
                            state,
                            &[("code", code.expose())],
                        ),
                        Err(page) => page,
                    },
                    Err(err) => unavailable(err),
                }
            }
        }
        Flow::Device {
            device_key,
            client_id,
        } => {
            let family = grants::device_family(device_key);
            match decision {
                Decision::Approve => keep_upstream(env, pending, family, client_id),
                Decision::Deny => Ok(()),
            }
            .map_or_else(
                |page| page,
                |()| decide_device(env, device_key, client_id, user, auth_time, decision),
            )
        }
    };
    pending.discard(env, response)
}

/// The grant `family` now exists for `client_id`: the user's upstream tokens of this
/// sign-in go with it ([`upstream_tokens`]).
fn keep_upstream(
    env: &Env,
    pending: &Pending,
    family: &str,
    client_id: &str,
) -> Result<(), Response> {
    upstream_tokens::attach(env, &pending.id, family, client_id).map_err(not_kept)
}

/// The user's upstream tokens could not be kept (the store, or the key that seals them, is
/// unavailable): the sign-in ends on a page, to be tried again.
pub(super) fn not_kept(err: OAuthError) -> Response {
    let mut page = pages::error_page(
        err.status,
        "Temporarily unavailable",
        "The server cannot complete your sign-in right now. Please try again in a moment.",
    );
    page.headers.extend(err.headers);
    page
}

/// RFC 8628 §3.3: record the decision on the device grant; the device learns it by polling.
fn decide_device(
    env: &Env,
    device_key: &str,
    client_id: &str,
    user: &Identity,
    auth_time: u64,
    decision: Decision,
) -> Response {
    let (status, kind) = match decision {
        Decision::Approve => (
            DeviceStatus::Approved {
                sub: user.sub.clone(),
                auth_time,
                username: user.username.clone(),
            },
            AuditKind::DeviceApproved,
        ),
        Decision::Deny => (DeviceStatus::Denied, AuditKind::DeviceDenied),
    };
    match grants::decide(env, device_key, status) {
        Ok(true) => {}
        Ok(false) => {
            return bad_request("This code has expired or has already been used.");
        }
        Err(err) => return unavailable(err),
    }
    env.audit(
        AuditEvent::new(kind, env.now())
            .client(client_id)
            .sub(&user.sub),
    );
    match decision {
        Decision::Approve => pages::page(
            200,
            "Device approved",
            "<p>You may return to your device.</p>",
        ),
        Decision::Deny => pages::page(
            200,
            "Denied",
            "<p>The device was not given access. You may close this window.</p>",
        ),
    }
}

/// The consent page: who asks (the client's name), where the user will be sent (the
/// redirect URI's host, shown prominently: a client may pick a misleading name), what for.
fn consent_page(env: &Env, pending: &Pending) -> Result<Response, Response> {
    let flow = &pending.record.flow;
    let (name, scope, resource, detail) = match flow {
        Flow::Code(request) => {
            let detail = format!(
                r#"<p>After you decide you will be sent to <span class="host">{}</span>.</p>"#,
                escape(&redirect_host(&request.redirect_uri))
            );
            let name = flow.client_name(env)?;
            (
                name,
                request.scope.clone(),
                request.resource.clone(),
                detail,
            )
        }
        Flow::Device { device_key, .. } => {
            let grant = records::get::<DeviceGrant>(env, device_key)
                .map_err(unavailable)?
                .filter(|g| g.status == DeviceStatus::Pending)
                .ok_or_else(|| bad_request("This code has expired or has already been used."))?;
            let detail = format!(
                r#"<p>Check that your device shows the code <span class="host">{}</span>.</p>"#,
                escape(&display_user_code(&grant.user_code))
            );
            let name = flow.client_name(env)?;
            (name, grant.scope, grant.resource, detail)
        }
    };
    let scopes: String = scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|s| format!("<li>{}</li>", escape(s)))
        .collect();
    let body = format!(
        r#"<p><strong>{name}</strong> asks to access <span class="host">{resource}</span> on your behalf.</p>
{detail}
<p>It asks for:</p>
<ul>{scopes}</ul>
<form method="post" action="{action}">
<input type="hidden" name="session" value="{session}">
{csrf}
<button type="submit" name="decision" value="approve">Approve</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>"#,
        name = escape(&name),
        resource = escape(&resource),
        action = escape(&env.settings.endpoint("/consent")),
        session = escape(&pending.id),
        csrf = csrf::field(&pending.record.csrf),
    );
    let mut page = pages::page(200, "Authorize access", &body);
    if let Flow::Code(request) = &pending.record.flow {
        page = page.with_form_redirect_to(&request.redirect_uri);
    }
    Ok(page)
}

/// `ABCDEFGH` → `ABCD-EFGH`, as RFC 8628 §6.1 suggests showing it.
fn display_user_code(code: &str) -> String {
    if code.len() == 8 && code.is_ascii() {
        format!("{}-{}", &code[..4], &code[4..])
    } else {
        code.to_string()
    }
}
