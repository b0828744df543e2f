//! `kill -9` in the middle of a load of writes (registrations, code redemptions, refresh
//! rotations, client credentials): after a restart on the same store, everything the host
//! acknowledged holds. Registered clients are there, issued tokens introspect active,
//! acknowledged rotations stand, and no authorization code is redeemed twice across the crash.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};

use serde_json::Value;

use super::{client_credentials, refresh, try_register, with_worker, without_rate_limits};
use crate::support::*;

/// Load threads, each rotating a refresh-token chain of its own.
const THREADS: usize = 4;
/// Authorization codes obtained before the load, for it to redeem.
const CODES: usize = 24;
/// Answers before the kill: every kind of write has been acknowledged a few times by then.
const ANSWERS_BEFORE_KILL: usize = 60;

#[test]
fn on_the_embedded_store() {
    kill_under_load(Store::Embedded);
}

#[test]
fn on_redis() {
    kill_under_load(Store::Redis);
}

fn kill_under_load(store: Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let backend = match store {
        Store::Embedded => Backend::Embedded,
        Store::Redis => Backend::Redis(Redis::start(dir.path())),
    };
    // Codes and grace windows outlast the test on any machine.
    let options = with_worker(without_rate_limits(backend.options()))
        .variable("CODE_LIFETIME", "600")
        .variable("REFRESH_GRACE_PERIOD", "600");
    let data = dir.path().join("data");
    let host = Host::start(&data, &options);
    let base = host.base.clone();
    let browser = Browser::new();
    let client_id = register_public_client(&browser, &base);
    let sign_in = || sign_in_locally(&browser, &base, &issuer_of(&base), &client_id);
    let chains: Vec<String> = (0..THREADS)
        .map(|_| {
            let tokens = tokens_of(&redeem(&browser, &base, &client_id, &sign_in()));
            text(&tokens, "refresh_token").to_string()
        })
        .collect();
    let load = Load {
        base: base.clone(),
        client_id: client_id.clone(),
        codes: (0..CODES).map(|_| sign_in()).collect(),
        next_code: AtomicUsize::new(0),
    };

    let (answers, answered) = mpsc::channel();
    let port = host.port;
    let seen: Vec<Acknowledged> = std::thread::scope(|scope| {
        let threads: Vec<_> = chains
            .into_iter()
            .enumerate()
            .map(|(thread, first)| {
                let (load, answers) = (&load, answers.clone());
                scope.spawn(move || load.run(thread, first, answers))
            })
            .collect();
        drop(answers);
        for _ in 0..ANSWERS_BEFORE_KILL {
            answered.recv().expect("the load ended before the kill");
        }
        // SIGKILL while every thread is sending: whatever was answered must be durable.
        host.kill();
        threads
            .into_iter()
            .map(|t| t.join().expect("load thread"))
            .collect()
    });

    let restarted = Host::start(
        &data,
        &HostOptions {
            port: Some(port),
            ..options
        },
    );
    check(&restarted.base, &load, &seen);
}

/// What the load threads share.
struct Load {
    base: String,
    /// The public client the codes and refresh tokens are for.
    client_id: String,
    /// Codes issued before the load; each is sent at most once during it.
    codes: Vec<String>,
    next_code: AtomicUsize,
}

/// What one load thread had acknowledged when the host died.
#[derive(Default)]
struct Acknowledged {
    /// Registration responses (201).
    registrations: Vec<Value>,
    /// Codes redeemed with a 200 (index into [`Load::codes`]) and the tokens they gave.
    redemptions: Vec<(usize, Value)>,
    /// The thread's refresh chain: the token it started with, then each rotation's child.
    chain: Vec<String>,
    /// Access tokens of rotations and of client credentials.
    access_tokens: Vec<String>,
}

impl Load {
    /// Sends each kind of write in turn until the host stops answering; tells `answers` of
    /// each answer. Any answer but the expected success fails the test.
    fn run(&self, thread: usize, first_refresh: String, answers: Sender<()>) -> Acknowledged {
        let browser = Browser::new();
        let mut seen = Acknowledged {
            chain: vec![first_refresh],
            ..Acknowledged::default()
        };
        for round in thread.. {
            let answered = match round % 4 {
                0 => self.register(&browser, &mut seen),
                1 => self.redeem(&browser, &mut seen),
                2 => self.rotate(&browser, &mut seen),
                _ => self.client_credentials(&browser, &mut seen),
            };
            if answered.is_err() {
                break;
            }
            // Nobody listens after the kill: the thread goes on until the host is gone.
            let _ = answers.send(());
        }
        seen
    }

    fn register(&self, browser: &Browser, seen: &mut Acknowledged) -> Result<(), ureq::Error> {
        let page = try_register(browser, &self.base)?;
        assert_eq!(page.status, 201, "registration: {}", page.body);
        seen.registrations.push(page.json());
        Ok(())
    }

    /// Redeems the next unused code (registers once they are all used).
    fn redeem(&self, browser: &Browser, seen: &mut Acknowledged) -> Result<(), ureq::Error> {
        let index = self.next_code.fetch_add(1, Ordering::SeqCst);
        let Some(code) = self.codes.get(index) else {
            return self.register(browser, seen);
        };
        let page = try_redeem(browser, &self.base, &self.client_id, code)?;
        seen.redemptions.push((index, tokens_of(&page)));
        Ok(())
    }

    fn rotate(&self, browser: &Browser, seen: &mut Acknowledged) -> Result<(), ureq::Error> {
        let current = seen.chain.last().expect("a chain starts with a token");
        let tokens = tokens_of(&refresh(browser, &self.base, &self.client_id, current)?);
        seen.chain.push(text(&tokens, "refresh_token").to_string());
        seen.access_tokens
            .push(text(&tokens, "access_token").to_string());
        Ok(())
    }

    fn client_credentials(
        &self,
        browser: &Browser,
        seen: &mut Acknowledged,
    ) -> Result<(), ureq::Error> {
        let tokens = tokens_of(&client_credentials(browser, &self.base)?);
        seen.access_tokens
            .push(text(&tokens, "access_token").to_string());
        Ok(())
    }
}

/// Everything acknowledged before the kill, checked on the restarted host at `base`.
fn check(base: &str, load: &Load, seen: &[Acknowledged]) {
    let browser = Browser::new();
    let registrations: Vec<&Value> = seen.iter().flat_map(|s| &s.registrations).collect();
    let redemptions: Vec<&(usize, Value)> = seen.iter().flat_map(|s| &s.redemptions).collect();
    let rotations: usize = seen.iter().map(|s| s.chain.len() - 1).sum();
    let access_tokens: Vec<&String> = seen.iter().flat_map(|s| &s.access_tokens).collect();
    assert!(
        !registrations.is_empty() && !redemptions.is_empty() && rotations > 0,
        "every kind of write was acknowledged before the kill: {} registrations, {} \
         redemptions, {rotations} rotations",
        registrations.len(),
        redemptions.len()
    );

    for registered in registrations {
        let read = read_registration(&browser, registered);
        assert_eq!(
            read.status, 200,
            "a registered client is gone: {}",
            read.body
        );
        assert_eq!(read.json()["client_id"], registered["client_id"]);
    }
    let active = |token: &str| introspect(&browser, base, token)["active"] == true;
    for (_, tokens) in &redemptions {
        for name in ["access_token", "refresh_token"] {
            assert!(active(text(tokens, name)), "the {name} of a redemption");
        }
    }
    for token in access_tokens {
        assert!(
            active(token),
            "an access token of a rotation or client credentials"
        );
    }
    // A chain's rotated tokens stay spent. Its last token still refreshes: it is current, or
    // the request the kill cut off rotated it and this is that request's retry, in its grace.
    for chain in seen.iter().map(|s| &s.chain) {
        let (last, rotated) = chain.split_last().expect("a chain starts with a token");
        for token in rotated {
            assert!(!active(token), "a rotated refresh token is active again");
        }
        let next = tokens_of(&refresh(&browser, base, &load.client_id, last).expect("refresh"));
        assert!(active(text(&next, "refresh_token")), "the chain goes on");
    }
    // Last, as a replay revokes what the code gave: each code gives tokens at most once
    // across the crash. Codes the load never sent still work; the ones cut off may have.
    let redeemed: HashSet<usize> = redemptions.iter().map(|(index, _)| *index).collect();
    let sent = load.next_code.load(Ordering::SeqCst);
    for (index, code) in load.codes.iter().enumerate() {
        let again = redeem(&browser, base, &load.client_id, code);
        let expected: &[u16] = if redeemed.contains(&index) {
            &[400]
        } else if index < sent {
            &[200, 400]
        } else {
            &[200]
        };
        assert!(
            expected.contains(&again.status),
            "code {index} (redeemed before: {}): {} {}",
            redeemed.contains(&index),
            again.status,
            again.body
        );
        if again.status == 400 {
            assert_eq!(again.error(), "invalid_grant");
        }
    }
}
