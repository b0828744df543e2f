//! Instance reuse (`Limits::instance_reuse`): what an instance may carry from one request to
//! the next, and when it is dropped instead.
//!
//! Under reuse a guest's own memory (its statics, its heap) survives from one request to the
//! next in the same instance: keeping request data out of it is the guest's part (the mcp-auth
//! components keep only settings and keys). The host's part, tested here, is that nothing of a
//! request's own (its resources, its deadline) outlives it, and that an instance that failed
//! in any way is never called again.

use std::sync::Arc;
use std::time::Duration;

use mcp_auth_host::Options;

use crate::support::{single_component_manifest, TestHost};

async fn host_with_reuse(reuse: u32, configure: impl FnOnce(&mut Options)) -> TestHost {
    TestHost::start(&single_component_manifest(""), None, |o: &mut Options| {
        o.limits.instance_reuse = reuse;
        configure(o);
    })
    .await
}

/// How many requests the instance that served this one has handled, this one included.
async fn calls(host: &TestHost) -> u64 {
    let (status, body) = host.get("/calls").await;
    assert_eq!(status, 200, "{body}");
    body.parse().unwrap()
}

/// Sequential requests share one instance up to the bound, then a fresh one starts; with 1,
/// every request has a fresh instance (today's behaviour).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_serves_up_to_its_bound() {
    let host = host_with_reuse(3, |_| {}).await;
    let mut seen = Vec::new();
    for _ in 0..7 {
        seen.push(calls(&host).await);
    }
    assert_eq!(seen, [1, 2, 3, 1, 2, 3, 1]);
    host.stop().await;

    let host = host_with_reuse(1, |_| {}).await;
    for _ in 0..3 {
        assert_eq!(calls(&host).await, 1);
    }
    host.stop().await;
}

/// A guest that prints keeps serving in its instance: what it keeps open for its whole life
/// (its stderr) is not a resource of a request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_that_logs_is_reused() {
    let host = host_with_reuse(u32::MAX, |_| {}).await;
    for _ in 0..3 {
        assert_eq!(host.get("/stderr").await, (200, "ok".into()));
    }
    assert_eq!(calls(&host).await, 4);
    host.stop().await;
}

/// A trap, an epoch timeout, a task timeout and memory exhaustion each discard the instance:
/// the next request gets a fresh one and succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_instance_is_never_reused() {
    let host = host_with_reuse(u32::MAX, |o| {
        o.limits.request_timeout = Duration::from_secs(2);
        o.limits.max_memory_bytes = 32 << 20;
        o.limits.max_concurrent_requests = 1;
    })
    .await;
    assert_eq!(calls(&host).await, 1);
    assert_eq!(calls(&host).await, 2);
    for failing in ["/trap", "/loop", "/sleep?ms=4000", "/oom"] {
        assert_eq!(host.get(failing).await.0, 500, "{failing}");
        assert_eq!(calls(&host).await, 1, "after {failing}");
        assert_eq!(calls(&host).await, 2, "after {failing}");
    }
    host.stop().await;
}

/// A request's resources end with it: an instance whose guest kept one (here the headers of
/// its request, in a static) is dropped, so no later request runs where they are reachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_keeps_a_request_resource_is_dropped() {
    let host = host_with_reuse(u32::MAX, |_| {}).await;
    assert_eq!(calls(&host).await, 1);
    assert_eq!(host.get("/keep-headers").await, (200, "2".into()));
    assert_eq!(calls(&host).await, 1);
    host.stop().await;
}

/// Concurrency comes from several instances, each reused, all within the pool's bound; idle
/// instances give their slots to requests that need one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_each_get_an_instance() {
    let host = Arc::new(host_with_reuse(u32::MAX, |o| o.limits.max_concurrent_requests = 4).await);
    let tasks = (0..8).map(|_| {
        let host = host.clone();
        tokio::spawn(async move {
            for _ in 0..20 {
                assert_eq!(host.get("/ok").await, (200, "ok".into()));
            }
        })
    });
    for task in tasks {
        task.await.unwrap();
    }
    // 160 requests, at most 4 instances: some instance served at least 40 of them.
    let most = {
        let mut most = 0;
        for _ in 0..4 {
            most = most.max(calls(&host).await);
        }
        most
    };
    assert!(most > 20, "{most}");
    Arc::into_inner(host).unwrap().stop().await;
}

/// What a guest leaves in its own memory stays in its instance: the next request of the same
/// instance finds it (keeping request data out of statics and the heap is the guest's part),
/// and a new instance, in whatever pool slot, starts clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_with_its_instance() {
    let host = host_with_reuse(2, |_| {}).await;
    for _ in 0..4 {
        assert_eq!(
            host.get("/leftovers").await,
            (200, "mark 0 dirty 0".to_owned())
        );
        let (status, second) = host.get("/leftovers").await;
        assert_eq!(status, 200);
        assert!(second.starts_with("mark 3735928559 "), "{second}");
    }
    host.stop().await;
}
