//! Faults, end to end through the real host: the host killed in the middle of a load of
//! writes, Redis going away under load and coming back, an upstream provider that hangs or
//! answers garbage, and the host's whole log searched for the secrets of full flows.

mod killed_under_load;
mod redis_outage;
mod secrets_in_the_log;
mod upstream_faults;

use crate::support::*;

/// The abuse limits, off: a load from one address would hit them, and they are tested on
/// their own.
fn without_rate_limits(options: HostOptions) -> HostOptions {
    options
        .variable("RATE_LIMIT_REGISTER_PER_IP", "0")
        .variable("RATE_LIMIT_REGISTER_GLOBAL", "0")
        .variable("RATE_LIMIT_TOKEN_PER_CLIENT", "0")
}

/// The operator's machine client (`MACHINE_CLIENTS`), for `client_credentials`: registration
/// never grants it.
const WORKER: (&str, &str) = ("worker", "worker-secret-of-the-fault-tests");

/// `options` with [`WORKER`] provisioned.
fn with_worker(options: HostOptions) -> HostOptions {
    options.variable("MACHINE_CLIENTS", &format!("{}:{}", WORKER.0, WORKER.1))
}

/// `grant_type=client_credentials` for [`WORKER`] (secret in the body).
fn client_credentials(browser: &Browser, base: &str) -> Result<Page, ureq::Error> {
    browser.try_post_form_with(
        &format!("{base}/token"),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", WORKER.0),
            ("client_secret", WORKER.1),
        ],
        &[],
    )
}

/// `grant_type=refresh_token` for a public client.
fn refresh(
    browser: &Browser,
    base: &str,
    client_id: &str,
    refresh_token: &str,
) -> Result<Page, ureq::Error> {
    browser.try_post_form_with(
        &format!("{base}/token"),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("refresh_token", refresh_token),
        ],
        &[],
    )
}

/// RFC 7591 registration of a public client, without panicking when nothing answers.
fn try_register(browser: &Browser, base: &str) -> Result<Page, ureq::Error> {
    browser.try_send_json(
        "POST",
        &format!("{base}/register"),
        Some(&public_client_metadata()),
        &[],
    )
}
