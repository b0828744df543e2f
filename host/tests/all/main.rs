//! Integration tests: the host serving the real test guest (`tests/guests`, built for
//! `wasm32-wasip2` on first use) over real HTTP on 127.0.0.1.

mod admin;
mod cli;
mod durability;
mod outbound;
mod reuse;
mod support;
mod trust;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mcp_auth_host::{Options, Server};
use support::{
    init_calls_import_wasm, manifest_with_source, request, single_component_manifest, TestHost,
};

fn lines(body: &str) -> HashMap<String, String> {
    body.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_and_headers_follow_spin() {
    let wasm = support::guest_wasm().display().to_string();
    let component = |id: &str| {
        format!(
            "[component.{id}]\nsource = \"{wasm}\"\n[component.{id}.variables]\ncomponent_name = \"{id}\"\n"
        )
    };
    let mut manifest =
        String::from("spin_manifest_version = 2\n[application]\nname = \"routes\"\n");
    for (route, id) in [
        ("/exact", "exact"),
        ("/wild/...", "wild"),
        ("/wild/deeper/...", "deeper"),
        ("/users/:id", "user"),
        ("/...", "fallback"),
    ] {
        manifest.push_str(&format!(
            "[[trigger.http]]\nroute = \"{route}\"\ncomponent = \"{id}\"\n"
        ));
    }
    manifest.push_str("[[trigger.http]]\nroute = { private = true }\ncomponent = \"private\"\n");
    for id in ["exact", "wild", "deeper", "user", "fallback", "private"] {
        manifest.push_str(&component(id));
    }
    let host = TestHost::start(&manifest, None, |_| {}).await;

    let (status, body) = host.get("/exact").await;
    assert_eq!(status, 200);
    let h = lines(&body);
    assert_eq!(h["component"], "exact");
    assert_eq!(h["spin-matched-route"], "/exact");
    assert_eq!(h["spin-component-route"], "/exact");
    assert_eq!(h["spin-path-info"], "");

    let h = lines(&host.get("/wild/a/b/").await.1);
    assert_eq!(h["component"], "wild");
    assert_eq!(h["spin-path-info"], "/a/b/");
    assert_eq!(h["spin-component-route"], "/wild");
    assert_eq!(h["spin-raw-component-route"], "/wild/...");
    assert_eq!(
        lines(&host.get("/wild/deeper/c").await.1)["component"],
        "deeper"
    );
    assert_eq!(lines(&host.get("/wild").await.1)["component"], "wild");

    let h = lines(&host.get("/users/42").await.1);
    assert_eq!(h["component"], "user");
    assert_eq!(h["spin-path-match-id"], "42");
    assert_eq!(
        lines(&host.get("/users/42/more").await.1)["component"],
        "fallback"
    );

    // The query reaches the guest in the full URL; forged spin-* headers do not.
    let (_, body) = request(
        host.addr,
        "GET",
        "/elsewhere?q=1",
        Vec::new(),
        &[
            ("spin-path-info", "/forged"),
            ("spin-path-match-x", "forged"),
        ],
    )
    .await;
    let h = lines(&body);
    assert_eq!(h["component"], "fallback");
    assert_eq!(
        h["spin-full-url"],
        format!("http://{}/elsewhere?q=1", host.addr)
    );
    assert_eq!(h["spin-path-info"], "/elsewhere");
    assert_eq!(h["spin-base-path"], "/");
    assert!(h["spin-client-addr"].starts_with("127.0.0.1:"));
    assert!(!h.contains_key("spin-path-match-x"));
    host.stop().await;

    // Without a catch-all, an unmatched path is a 404 from the host.
    let manifest = format!(
        "spin_manifest_version = 2\n[application]\nname = \"r\"\n[[trigger.http]]\nroute = \"/only\"\ncomponent = \"exact\"\n{}",
        component("exact")
    );
    let host = TestHost::start(&manifest, None, |_| {}).await;
    assert_eq!(host.get("/other").await.0, 404);
    assert_eq!(host.get("/only").await.0, 200);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variables_come_from_defaults_dotenv_and_environment() {
    let manifest = format!(
        r#"{}
[component.guest.variables]
a = "{{{{ a }}}}"
b = "{{{{ b }}}}"
c = "{{{{ c }}}}"
secret = "{{{{ secret }}}}"
templated = "x-{{{{ a }}}}-{{{{ c }}}}-y"

[variables]
a = {{ default = "default-a" }}
b = {{ default = "default-b" }}
c = {{ default = "default-c" }}
secret = {{ required = true, secret = true }}
"#,
        single_component_manifest("")
    );
    let dotenv = "B=dotenv-b\nC=dotenv-c\nSECRET=dotenv-secret\n";
    let host = TestHost::start(&manifest, Some(dotenv), |o| {
        o.environment = Some(HashMap::from([
            ("C".to_owned(), "env-c".to_owned()),
            ("SPIN_VARIABLE_SECRET".to_owned(), "env-secret".to_owned()),
        ]));
    })
    .await;
    assert_eq!(host.get("/config?name=a").await, (200, "default-a".into()));
    assert_eq!(host.get("/config?name=b").await, (200, "dotenv-b".into()));
    assert_eq!(host.get("/config?name=c").await, (200, "env-c".into()));
    assert_eq!(
        host.get("/config?name=secret").await,
        (200, "env-secret".into())
    );
    assert_eq!(
        host.get("/config?name=templated").await,
        (200, "x-default-a-env-c-y".into())
    );
    // Only the component's own variables are visible.
    assert_eq!(host.get("/config?name=nope").await, (404, "none".into()));

    // A required variable with no value stops start-up, naming it.
    let dir = tempfile::tempdir().unwrap();
    let path = support::write_app(dir.path(), &manifest, None);
    let store = Arc::new(support::MapStore::new());
    let err = Server::new(&path, support::options(&store))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("`secret`") && err.contains("SPIN_VARIABLE_SECRET"),
        "{err}"
    );
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_errors_name_the_problem() {
    let store = Arc::new(support::MapStore::new());
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let err = Server::new(&missing, support::options(&store))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("nope.toml") && err.contains("--manifest"),
        "{err}"
    );

    let manifest = single_component_manifest("").replace(
        &support::guest_wasm().display().to_string(),
        "target/wasm32-wasip2/release/absent.wasm",
    );
    let path = support::write_app(dir.path(), &manifest, None);
    let err = Server::new(&path, support::options(&store))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("absent.wasm") && err.contains("build the components"),
        "{err}"
    );

    let manifest = single_component_manifest("").replace("[\"default\"]", "[\"elsewhere\"]");
    let path = support::write_app(dir.path(), &manifest, None);
    let err = Server::new(&path, support::options(&store))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("`elsewhere`"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_guests_fail_alone() {
    let host = TestHost::start(&single_component_manifest(""), None, |o: &mut Options| {
        o.limits.request_timeout = Duration::from_secs(3);
        o.limits.max_memory_bytes = 32 << 20;
        o.limits.max_request_body_bytes = 1024;
        o.limits.max_response_body_bytes = 4096;
    })
    .await;
    let addr = host.addr;
    let bad: Vec<_> = ["/trap", "/loop", "/oom"]
        .into_iter()
        .map(|p| tokio::spawn(async move { (p, request(addr, "GET", p, Vec::new(), &[]).await) }))
        .collect();
    // While the loop spins, normal requests are served.
    for _ in 0..5 {
        assert_eq!(host.get("/ok").await, (200, "ok".into()));
    }
    for task in bad {
        let (path, (status, _)) = task.await.unwrap();
        assert_eq!(status, 500, "{path}");
    }
    assert_eq!(host.get("/ok").await, (200, "ok".into()));

    // Body limits.
    let (status, _) = request(addr, "POST", "/body", vec![0; 2000], &[]).await;
    assert_eq!(status, 413);
    assert_eq!(
        request(addr, "POST", "/body", vec![0; 1000], &[]).await,
        (200, "1000".into())
    );
    assert_eq!(host.get("/big?bytes=100").await.0, 200);
    assert_eq!(host.get("/big?bytes=5000").await.0, 500);

    let metrics = host.server.metrics();
    let traps: u64 = metrics
        .lines()
        .find(|l| l.starts_with("mcp_auth_guest_traps_total{component=\"guest\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap();
    assert!(traps >= 3, "{metrics}");
    host.stop().await;
}

/// The counter values in successful responses, sorted.
fn sorted_counts(results: Vec<(u16, String)>) -> Vec<i64> {
    let mut seen: Vec<i64> = results
        .into_iter()
        .map(|(s, b)| {
            assert_eq!(s, 200, "{b}");
            b.parse().unwrap()
        })
        .collect();
    seen.sort();
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyvalue_from_a_guest() {
    let manifest = single_component_manifest("").replace(
        "key_value_stores = [\"default\"]",
        "key_value_stores = [\"default\", \"broken\"]",
    );
    let host = TestHost::start(&manifest, None, |o| {
        if let Some(stores) = o.stores.as_mut() {
            stores.insert("broken".into(), Arc::new(support::BrokenStore));
            stores.insert("private".into(), Arc::new(support::MapStore::new()));
        }
    })
    .await;
    assert_eq!(host.get("/kv/get?key=k").await, (404, "none".into()));
    assert_eq!(host.get("/kv/set?key=k&value=v1").await, (200, "ok".into()));
    assert_eq!(host.get("/kv/get?key=k").await, (200, "v1".into()));
    assert_eq!(host.get("/kv/exists?key=k").await, (200, "true".into()));
    assert_eq!(host.get("/kv/delete?key=k").await, (200, "ok".into()));
    assert_eq!(host.get("/kv/exists?key=k").await, (200, "false".into()));
    // Labels not listed for the component are refused, even when a backend exists.
    assert_eq!(
        host.get("/kv/open?label=private").await,
        (403, "access-denied".into())
    );
    // Backend failures reach the guest as `other` and are counted.
    let (status, body) = host.get("/kv/get?label=broken&key=k").await;
    assert_eq!(status, 500);
    assert!(body.contains("disk on fire"), "{body}");

    let addr = host.addr;
    let concurrently = |path: &'static str| async move {
        let tasks: Vec<_> = (0..100)
            .map(|_| tokio::spawn(async move { request(addr, "GET", path, Vec::new(), &[]).await }))
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    };
    // increment: every caller sees a distinct value, 1..=100.
    assert_eq!(
        sorted_counts(concurrently("/kv/incr?key=counter").await),
        (1..=100).collect::<Vec<_>>()
    );
    // compare-and-swap claim: exactly one winner.
    let results = concurrently("/kv/claim?key=claim").await;
    assert_eq!(
        results.iter().filter(|(s, _)| *s == 200).count(),
        1,
        "{results:?}"
    );
    assert_eq!(results.iter().filter(|(s, _)| *s == 409).count(), 99);
    // compare-and-swap with retries: no lost update.
    assert_eq!(
        sorted_counts(concurrently("/kv/cas-incr?key=cas").await),
        (1..=100).collect::<Vec<_>>()
    );

    let metrics = host.server.metrics();
    assert!(
        metrics.contains("mcp_auth_store_errors_total{store=\"broken\"} 1"),
        "{metrics}"
    );
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests() {
    let host = TestHost::start(&single_component_manifest(""), None, |_| {}).await;
    for _ in 0..3 {
        host.get("/ok").await;
    }
    // Requests that fit in the memory they start with do not count as grown.
    assert!(
        !host
            .server
            .metrics()
            .contains("mcp_auth_guest_memory_grown_total{"),
        "{}",
        host.server.metrics()
    );
    assert_eq!(host.get("/grow?bytes=4000000").await, (200, "grown".into()));
    host.get("/trap").await;
    let text = host.server.metrics();
    assert!(
        text.contains("mcp_auth_guest_memory_grown_total{component=\"guest\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("mcp_auth_requests_total{component=\"guest\",status=\"200\"} 4"),
        "{text}"
    );
    assert!(
        text.contains("mcp_auth_requests_total{component=\"guest\",status=\"500\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("mcp_auth_request_duration_seconds_count{component=\"guest\"} 5"),
        "{text}"
    );
    assert!(
        text.contains("mcp_auth_guest_traps_total{component=\"guest\"} 1"),
        "{text}"
    );
    host.stop().await;
}

/// Issue 16 item 15: the metrics describe traffic, failures and stores; the public listener
/// must not hand them out. `/metrics` there is a path like any other, and only a listener of
/// its own serves them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_only_on_their_own_listener() {
    // Only `/ok` is routed: an unknown path is the host's own 404.
    let manifest = single_component_manifest("").replace("route = \"/...\"", "route = \"/ok\"");
    let host = TestHost::start(&manifest, None, |_| {}).await;
    assert_eq!(host.get("/ok").await.0, 200);
    let unknown = host.get("/no-such-path").await;
    assert_eq!(unknown.0, 404);
    assert_eq!(host.get("/metrics").await, unknown);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_addr = listener.local_addr().unwrap();
    let server = host.server.clone();
    let metrics = tokio::spawn(async move { server.serve_metrics(listener).await.unwrap() });
    let (status, text) = request(metrics_addr, "GET", "/metrics", Vec::new(), &[]).await;
    assert_eq!(status, 200);
    assert!(
        text.contains("mcp_auth_requests_total{component=\"guest\",status=\"200\"} 1"),
        "{text}"
    );
    assert_eq!(text, host.server.metrics());
    // The metrics listener serves nothing else, and the main listener still no metrics.
    assert_eq!(
        request(metrics_addr, "GET", "/ok", Vec::new(), &[]).await.0,
        404
    );
    assert_eq!(
        request(metrics_addr, "POST", "/metrics", Vec::new(), &[])
            .await
            .0,
        404
    );
    assert_eq!(host.get("/metrics").await, unknown);
    host.stop().await;
    metrics.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_requests() {
    let host = TestHost::start(&single_component_manifest(""), None, |_| {}).await;
    let addr = host.addr;
    let slow =
        tokio::spawn(async move { request(addr, "GET", "/sleep?ms=1000", Vec::new(), &[]).await });
    // Wait until the guest is running (it marks the store before sleeping).
    while !mcp_auth_kv::Store::exists(&*host.store, "sleeping")
        .await
        .unwrap()
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let server = host.server.clone();
    host.stop().await;
    assert_eq!(slow.await.unwrap(), (200, "slept".into()));
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    drop(server);
}

/// One fresh instance per request even though the pool keeps slots' memory resident: nothing a
/// request wrote (a static, the heap) is there for the next one, in any slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_sees_what_an_earlier_one_left_in_memory() {
    let host = TestHost::start(&single_component_manifest(""), None, |_| {}).await;
    let host = Arc::new(host);
    let rounds = (0..8).map(|_| {
        let host = host.clone();
        tokio::spawn(async move {
            let mut answers = Vec::new();
            for _ in 0..25 {
                answers.push(host.get("/leftovers").await);
            }
            answers
        })
    });
    for round in rounds {
        for answer in round.await.unwrap() {
            assert_eq!(answer, (200, "mark 0 dirty 0".to_owned()));
        }
    }
    Arc::into_inner(host).unwrap().stop().await;
}

/// A component that exports `wizer-initialize` is pre-initialized once, at load: every instance
/// starts from the memory the initializer left (it ran once, and never again per request),
/// whether the component was compiled by this start or came from the compile cache. Requests
/// still leave nothing to each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_start_from_the_pre_initialized_snapshot() {
    let cache = tempfile::tempdir().unwrap();
    for start in ["compiled", "cached"] {
        let host = TestHost::start(&single_component_manifest(""), None, |options| {
            options.cache_dir = Some(cache.path().to_owned());
        })
        .await;
        for _ in 0..3 {
            assert_eq!(
                host.get("/preinitialized").await,
                (200, "marker 0x5eed calls 1".to_owned()),
                "{start}"
            );
            assert_eq!(
                host.get("/leftovers").await,
                (200, "mark 0 dirty 0".to_owned()),
                "{start}"
            );
        }
        host.stop().await;
        let entries = std::fs::read_dir(cache.path()).unwrap().count();
        assert_eq!(entries, 1, "{start}: one cache entry, the snapshot's");
    }
}

/// The initializer may compute, never reach outside: every import traps while it runs, so no
/// random seed, variable, stored value or request can be frozen into the snapshot that every
/// instance shares. A component whose initializer calls one (here `wasi:random`) loads as it
/// is, not pre-initialized, and serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_initializer_that_calls_an_import_is_not_snapshotted() {
    let manifest = manifest_with_source(&init_calls_import_wasm(), "");
    let host = TestHost::start(&manifest, None, |options| options.cache_dir = None).await;
    assert_eq!(
        host.get("/preinitialized").await,
        (200, "marker 0x0 calls 0".to_owned())
    );
    assert_eq!(host.get("/ok").await, (200, "ok".to_owned()));
    host.stop().await;
}
