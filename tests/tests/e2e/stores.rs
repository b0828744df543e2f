//! Two hosts behind one name on one Redis, as behind a load balancer: what one issues the
//! other honours, and a code is redeemed exactly once even when both hosts are asked at once.

use std::sync::Barrier;

use crate::support::*;

#[test]
fn two_hosts_on_one_redis_share_codes_and_redeem_each_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let backend = Backend::Redis(Redis::start(dir.path()));
    let a = Host::start(&dir.path().join("a"), &backend.options());
    // Both answer for one issuer: A's address stands for the load balancer's.
    let b_options = HostOptions {
        issuer: Some(a.base.clone()),
        ..backend.options()
    };
    let b = Host::start(&dir.path().join("b"), &b_options);
    let issuer = &issuer_of(&a.base);
    let browser = Browser::new();

    let client_id = register_public_client(&browser, &a.base);
    let code = sign_in_locally(&browser, &a.base, issuer, &client_id);
    let tokens = tokens_of(&redeem(&browser, &b.base, &client_id, &code));
    let access = text(&tokens, "access_token");
    assert_eq!(introspect(&browser, &a.base, access)["active"], true);
    assert_eq!(introspect(&browser, &b.base, access)["sub"], "demo");

    // Each round: one code, redeemed through A and through B at the same moment.
    for _ in 0..3 {
        let code = sign_in_locally(&browser, &a.base, issuer, &client_id);
        let barrier = Barrier::new(2);
        let statuses: Vec<(u16, String)> = std::thread::scope(|scope| {
            let racers: Vec<_> = [&a, &b]
                .into_iter()
                .map(|host| {
                    let (barrier, code, client_id) = (&barrier, &code, &client_id);
                    scope.spawn(move || {
                        let browser = Browser::new();
                        barrier.wait();
                        let page = redeem(&browser, &host.base, client_id, code);
                        (page.status, page.body)
                    })
                })
                .collect();
            racers
                .into_iter()
                .map(|r| r.join().expect("racer"))
                .collect()
        });
        let won = statuses.iter().filter(|(status, _)| *status == 200).count();
        assert_eq!(won, 1, "exactly one redemption succeeds: {statuses:?}");
        let lost = statuses
            .iter()
            .find(|(status, _)| *status != 200)
            .expect("a loser");
        assert_eq!(lost.0, 400, "{statuses:?}");
        assert!(lost.1.contains("invalid_grant"), "{statuses:?}");
    }
}
