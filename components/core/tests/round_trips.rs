//! Store round trips per flow (issue 14): every `get`, `set`, `delete`, `increment` and batch
//! call is one hop across the component boundary and, on Redis, one network round trip.
//!
//! The budgets are what a flow needs once its reads, writes and counters are batched as far
//! as `wasi:keyvalue` draft2 allows (see `Env` and `tokens::issue`); a request that happens to
//! help sweep (one in eight) does more and is not measured.

mod token_support;

use mcp_auth_core::testing::Harness;
use token_support::*;

/// The round trips `call` makes, for each of `n` calls.
fn trips_of(h: &Harness, n: usize, mut call: impl FnMut(&Harness)) -> Vec<u64> {
    (0..n)
        .map(|_| {
            let before = h.store.round_trips();
            call(h);
            h.store.round_trips() - before
        })
        .collect()
}

/// The fewest round trips of several requests: those that did not help sweep.
fn fewest(trips: &[u64]) -> u64 {
    *trips.iter().min().unwrap()
}

#[test]
fn a_refresh_grant_takes_eight_round_trips() {
    let h = harness();
    let tokens = signed_in(&h, "c1");
    let mut current = tokens["refresh_token"].as_str().unwrap().to_string();
    let trips = trips_of(&h, 8, |h| {
        let next = ok_json(&refresh(h, "c1", &current));
        current = next["refresh_token"].as_str().unwrap().to_string();
    });
    // 1 read (client, token, tombstone, stored signing key), the rate-limit counter, the
    // claim, the family's slots, the sweep index of the child's and of the access token's
    // expiry (two buckets), 1 write of every record, the family's revocation mark.
    assert_eq!(fewest(&trips), 8, "{trips:?}");
}

#[test]
fn a_code_exchange_takes_as_many_round_trips_as_a_refresh() {
    let h = harness();
    public_client(&h, "c1");
    let _ = ok_json(&redeem(&h, "c1", &code_for(&h, "c1"))); // the signing key is made
    let codes: Vec<String> = (0..8).map(|_| code_for(&h, "c1")).collect();
    let mut codes = codes.into_iter();
    let trips = trips_of(&h, 8, |h| {
        let _ = ok_json(&redeem(h, "c1", &codes.next().unwrap()));
    });
    // 1 read (client, code, signing key), the rate-limit counter, the claim, the family's
    // slots, two sweep buckets, 1 write, the revocation mark.
    assert_eq!(fewest(&trips), 8, "{trips:?}");
}

#[test]
fn a_registration_counts_its_two_limits_and_writes_once() {
    let h = harness_with(&[("client_lifetime", "86400")]);
    let trips = trips_of(&h, 8, |h| {
        let _ = register_public(h, serde_json::json!({}));
    });
    // The per-address and the global limit (two counters), the sweep index of the expiring
    // client, then the client and its index entry in one write.
    assert_eq!(fewest(&trips), 4, "{trips:?}");
}
