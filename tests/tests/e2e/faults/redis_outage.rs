//! Redis killed under load. While it is down, every request that needs the store answers 503
//! with `Retry-After` (RFC 6749 §5.2 JSON at the API endpoints, a page for people) — never a
//! 500, never a hang — the host process keeps running and discovery keeps answering. Redis
//! then restarts on the same port and replays its append-only file, and the same host process
//! serves again without a restart: its Redis connection reconnects by itself. Nothing Redis
//! acknowledged is lost (it fsyncs every write before answering).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

use super::{client_credentials, refresh, try_register, with_worker, without_rate_limits};
use crate::support::*;

const THREADS: usize = 3;
/// Successful answers before Redis is killed.
const SUCCESSES_BEFORE: usize = 20;
/// 503s before Redis comes back.
const REFUSALS_DURING: usize = 15;
/// Successful answers after Redis is back, before the load stops.
const SUCCESSES_AFTER: usize = 15;
/// A guard against waiting forever for the answers above, not a speed assertion.
const WAIT_LIMIT: Duration = Duration::from_secs(60);

#[test]
fn requests_get_503_with_retry_after_while_redis_is_down_and_the_same_host_recovers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut redis = Redis::start_durable(dir.path());
    let options = with_worker(without_rate_limits(HostOptions {
        runtime_config: Some(redis.runtime_config.clone()),
        ..HostOptions::default()
    }))
    // A store call that hung would end in the host's 500 after this.
    .arg("request-timeout", "10");
    let mut host = Host::start(&dir.path().join("host"), &options);
    let base = host.base.clone();
    let browser = Browser::new();
    let client_id = register_public_client(&browser, &base);
    let earlier = tokens_of(&redeem(
        &browser,
        &base,
        &client_id,
        &sign_in_locally(&browser, &base, &issuer_of(&base), &client_id),
    ));
    let load = Load {
        base: base.clone(),
        access_token: text(&earlier, "access_token").to_string(),
        stop: AtomicBool::new(false),
    };

    let (answers, answered) = mpsc::channel();
    let pages: Vec<Page> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..THREADS)
            .map(|thread| {
                let (load, answers) = (&load, answers.clone());
                scope.spawn(move || load.run(thread, answers))
            })
            .collect();
        drop(answers);
        wait_for(&answered, SUCCESSES_BEFORE, is_success);
        redis.kill();
        wait_for(&answered, REFUSALS_DURING, |status| status == 503);
        while_redis_is_down(&browser, &mut host, &client_id);
        redis.restart();
        wait_for(&answered, SUCCESSES_AFTER, is_success);
        load.stop.store(true, Ordering::SeqCst);
        threads
            .into_iter()
            .flat_map(|t| t.join().expect("load thread"))
            .collect()
    });

    for page in &pages {
        match page.status {
            200 | 201 => {}
            503 => assert_retry_later(page),
            other => panic!("{other} from {}: {}", page.url, page.body),
        }
    }
    let refused = pages.iter().filter(|p| p.status == 503).count();
    assert!(refused >= REFUSALS_DURING, "{refused} refusals");

    // The same process, never restarted, serves everything again, and lost nothing.
    assert!(host.is_running(), "the host died");
    assert_eq!(
        introspect(&browser, &base, &load.access_token)["active"],
        true
    );
    for page in pages.iter().filter(|p| p.status == 201) {
        let read = read_registration(&browser, &page.json());
        assert_eq!(
            read.status, 200,
            "a registered client is gone: {}",
            read.body
        );
    }
    let code = sign_in_locally(&browser, &base, &issuer_of(&base), &client_id);
    let tokens = tokens_of(&redeem(&browser, &base, &client_id, &code));
    let refreshed =
        refresh(&browser, &base, &client_id, text(&tokens, "refresh_token")).expect("refresh");
    let refreshed = tokens_of(&refreshed);
    assert_eq!(
        introspect(&browser, &base, text(&refreshed, "access_token"))["active"],
        true
    );
}

/// What the load threads share.
struct Load {
    base: String,
    /// A token from before the outage, for introspection.
    access_token: String,
    stop: AtomicBool,
}

impl Load {
    /// Registers, asks for client credentials and introspects in turn until `stop`; tells
    /// `answers` each status. The host must answer every request.
    fn run(&self, thread: usize, answers: Sender<u16>) -> Vec<Page> {
        let browser = Browser::new();
        let mut pages = Vec::new();
        for round in thread.. {
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            let answer = match round % 3 {
                0 => try_register(&browser, &self.base),
                1 => client_credentials(&browser, &self.base),
                _ => try_introspect(&browser, &self.base, &self.access_token),
            };
            let page = answer.unwrap_or_else(|e| panic!("the host did not answer: {e}"));
            // The receiver is gone once the test has seen enough.
            let _ = answers.send(page.status);
            pages.push(page);
        }
        pages
    }
}

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// Waits for `count` answers whose status passes `wanted`.
fn wait_for(answered: &Receiver<u16>, count: usize, wanted: fn(u16) -> bool) {
    let deadline = Instant::now() + WAIT_LIMIT;
    let mut seen = 0;
    while seen < count {
        let left = deadline.saturating_duration_since(Instant::now());
        let status = answered
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("{seen} of {count} awaited answers came ({e})"));
        seen += usize::from(wanted(status));
    }
}

/// The host stays up; what needs no store answers, what does says "later".
fn while_redis_is_down(browser: &Browser, host: &mut Host, client_id: &str) {
    assert!(host.is_running(), "the host died with Redis");
    let metadata = browser.get(&host.url("/.well-known/oauth-authorization-server"));
    assert_eq!(metadata.status, 200, "{}", metadata.body);
    let health = browser.get(&host.url("/health"));
    assert_retry_later(&health);
    // A person gets a page rather than JSON, with the same advice.
    let page = browser.get(&authorization_url(&host.base, client_id, "st-1"));
    assert_eq!(page.status, 503, "{}", page.body);
    assert_eq!(page.header("retry-after"), Some("1"), "{:?}", page.headers);
    assert!(page.body.contains("try again"), "{}", page.body);
}

/// RFC 6749 §5.2 `temporarily_unavailable`, 503 with `Retry-After` (RFC 9110 §10.2.3).
fn assert_retry_later(page: &Page) {
    assert_eq!(page.status, 503, "{}", page.body);
    assert_eq!(page.error(), "temporarily_unavailable", "{}", page.url);
    assert_eq!(page.header("retry-after"), Some("1"), "{:?}", page.headers);
}
