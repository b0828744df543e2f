//! TaskManager behind a company CA (issue 13 item 3): `mcp-auth serve` reaches an https
//! TaskManager whose certificate comes from a CA made by the test when `--outbound-ca-file`
//! names that CA, or when the runtime config's `[[client_tls]]` names `authorize` and the
//! host; with neither, the code exchange fails on TLS and the user sees the failure page.

use std::path::Path;
use std::sync::Arc;

use crate::support::site;
use crate::support::taskmanager::{self, FakeTaskManager};
use crate::support::*;
use crate::taskmanager::sign_in_at_taskmanager;

/// A TLS front for `backend` (a plain-http port on 127.0.0.1) on an ephemeral loopback port,
/// presenting a certificate for `localhost` from a fresh CA; dropping it stops it.
struct TlsFront {
    _server: site::Server,
    /// `https://localhost:PORT`.
    base: String,
    /// The CA certificate, PEM.
    ca_pem: String,
}

impl TlsFront {
    fn start(backend: u16) -> TlsFront {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca.self_signed(&ca_key).expect("CA certificate");
        let key = rcgen::KeyPair::generate().expect("key");
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .expect("params")
            .signed_by(&key, &ca, &ca_key)
            .expect("certificate");
        let tls = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let server = site::listen(move |stream| {
            let acceptor = acceptor.clone();
            async move {
                // An untrusting client ends the handshake: nothing to forward.
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(("127.0.0.1", backend)).await
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            }
        });
        TlsFront {
            base: format!("https://localhost:{}", server.port),
            _server: server,
            ca_pem: ca.pem(),
        }
    }
}

/// A host delegating to TaskManager at `front` (https), with `options` on top.
fn start(tm: &FakeTaskManager, front: &TlsFront, dir: &Path, options: HostOptions) -> Host {
    let options = options
        .variable("UPSTREAM_PROVIDER", "taskmanager")
        .variable("TASKMANAGER_OAUTH_HOST", &front.base)
        .variable("TASKMANAGER_CLIENT_ID", taskmanager::CLIENT_ID)
        .variable("TASKMANAGER_CLIENT_SECRET", taskmanager::CLIENT_SECRET);
    let host = Host::start(dir, &options);
    tm.register_redirect_uri(&host.url("/oauth/callback"));
    host
}

/// /authorize → TaskManager's sign-in (the browser goes there over plain http: only the host's
/// own requests need the CA) → alice signs in → our /oauth/callback, where the host redeems
/// TaskManager's code over https. The callback's page.
fn callback(host: &Host, tm: &FakeTaskManager, front: &TlsFront) -> Page {
    let browser = Browser::new();
    let client_id = register_public_client(&browser, &host.base);
    let redirect = browser.get(&authorization_url(&host.base, &client_id, "st-1"));
    let upstream = redirect.location();
    assert!(upstream.starts_with(&front.base), "{upstream}");
    let sign_in = browser.get(&upstream.replacen(&front.base, &tm.base, 1));
    assert_eq!(sign_in.status, 200, "{}", sign_in.body);
    let back = sign_in_at_taskmanager(&browser, &sign_in);
    browser.follow(&back)
}

#[test]
fn an_https_taskmanager_behind_a_company_ca_is_reached_once_its_ca_is_trusted() {
    let tm = FakeTaskManager::start();
    let port: u16 = tm
        .base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let front = TlsFront::start(port);
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("company-ca.pem");
    std::fs::write(&ca, &front.ca_pem).expect("write the CA");

    // The web roots only: the exchange fails on TLS, before TaskManager sees it.
    let host = start(
        &tm,
        &front,
        &dir.path().join("none"),
        HostOptions::default(),
    );
    let failed = callback(&host, &tm, &front);
    assert_eq!(failed.status, 502, "{}", failed.body);
    assert!(tm.exchanges().is_empty(), "{:?}", tm.exchanges());
    drop(host);

    // `--outbound-ca-file`.
    let options = HostOptions::default().arg("outbound-ca-file", &ca.display().to_string());
    let host = start(&tm, &front, &dir.path().join("flag"), options);
    let consent = callback(&host, &tm, &front);
    assert_eq!(consent.status, 200, "consent page: {}", consent.body);
    assert_eq!(tm.exchanges().len(), 1);
    drop(host);

    // `[[client_tls]]` in the runtime config, as Spin reads it: for `authorize` and this host.
    let config = dir.path().join("runtime-config.toml");
    std::fs::write(
        &config,
        "[[client_tls]]\ncomponent_ids = [\"authorize\"]\nhosts = [\"localhost\"]\n\
         ca_roots_file = \"company-ca.pem\"\n",
    )
    .expect("write the runtime config");
    let options = HostOptions {
        runtime_config: Some(config),
        ..HostOptions::default()
    };
    let host = start(&tm, &front, &dir.path().join("client-tls"), options);
    let consent = callback(&host, &tm, &front);
    assert_eq!(consent.status, 200, "consent page: {}", consent.body);
    let exchanges = tm.exchanges();
    assert_eq!(exchanges.len(), 2, "{exchanges:?}");
    assert!(exchanges.iter().all(|e| e.succeeded), "{exchanges:?}");
}
