//! A rough throughput figure, not an assertion: `cargo test -p mcp-auth-host --test all --
//! --ignored bench --nocapture`. Eight keep-alive connections send `GET /ok` to the test guest.

use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use crate::support::{connect, single_component_manifest, TestHost};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run on demand"]
async fn bench_ok_requests_per_second() {
    const CONNECTIONS: usize = 8;
    const PER_CONNECTION: usize = 1000;
    let host = TestHost::start(&single_component_manifest(""), None, |_| {}).await;
    let addr = host.addr;
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            tokio::spawn(async move {
                let mut sender = connect(addr).await;
                for _ in 0..PER_CONNECTION {
                    let req = http::Request::get("/ok")
                        .header("host", addr.to_string())
                        .body(Full::new(Bytes::new()))
                        .unwrap();
                    let res = sender.send_request(req).await.unwrap();
                    assert_eq!(res.status(), 200);
                    res.into_body().collect().await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed();
    let total = CONNECTIONS * PER_CONNECTION;
    println!(
        "{total} requests in {elapsed:?}: {:.0} req/s",
        total as f64 / elapsed.as_secs_f64()
    );
    host.stop().await;
}
