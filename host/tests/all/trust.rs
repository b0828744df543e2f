//! Whom outbound HTTPS trusts (issue 13 item 3): the web PKI roots by default; a CA made by the
//! test when the runtime config's `[[client_tls]]` names the component and host, when
//! `outbound_ca_files` lists it, or when the system store holds it and the host is asked to use
//! that store. Both outbound paths: hosts that `allowed_outbound_hosts` names, and hosts reached
//! only through a wildcard. An untrusted server is a `wasi:http` TLS error for the guest.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mcp_auth_host::{Options, Server};

use crate::outbound::{TableResolver, Upstream};
use crate::support::{self, single_component_manifest, TestHost};

/// A certificate authority made by the test, and a server configuration presenting a
/// certificate it issued for `names`.
pub(crate) struct TestCa {
    key: rcgen::KeyPair,
    certificate: rcgen::Certificate,
    pub(crate) server: rustls::ServerConfig,
}

impl TestCa {
    pub(crate) fn new(names: &[&str]) -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let certificate = params.self_signed(&key).unwrap();
        let (leaf, leaf_key) = issue(&certificate, &key, names);
        let leaf_key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        let server = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], leaf_key)
            .unwrap();
        TestCa {
            key,
            certificate,
            server,
        }
    }

    /// The CA certificate, DER.
    pub(crate) fn der(&self) -> Vec<u8> {
        self.certificate.der().to_vec()
    }

    /// Writes the CA certificate as PEM to `dir/name`.
    fn write_pem(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, self.certificate.pem()).unwrap();
        path
    }

    /// The same server, now asking clients for a certificate this CA issued.
    fn requiring_client_certificates(mut self) -> TestCa {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.certificate.der().clone()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
            .build()
            .unwrap();
        let certified = self.server.cert_resolver.clone();
        self.server = rustls::ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(certified);
        self
    }

    /// A client certificate this CA issued, written as `client.pem` and `client.key` in `dir`.
    fn write_client_certificate(&self, dir: &Path) {
        let (leaf, key) = issue(&self.certificate, &self.key, &["client.test"]);
        std::fs::write(dir.join("client.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.join("client.key"), key.serialize_pem()).unwrap();
    }
}

/// A certificate for `names` issued by `ca`, and its key.
fn issue(
    ca: &rcgen::Certificate,
    ca_key: &rcgen::KeyPair,
    names: &[&str],
) -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let names = names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let leaf = rcgen::CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, ca, ca_key)
        .unwrap();
    (leaf, key)
}

/// The test guest (component `guest`) allowed `hosts`, with `configure` applied.
async fn fetcher(hosts: &[String], configure: impl FnOnce(&mut Options)) -> TestHost {
    let list = hosts
        .iter()
        .map(|h| format!("{h:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let manifest = single_component_manifest(&format!("allowed_outbound_hosts = [{list}]\n"));
    TestHost::start(&manifest, None, configure).await
}

/// Writes a runtime config of `text` into `dir` (beside the CA's `ca.pem`).
fn runtime_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("runtime-config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn client_tls(component: &str, host: &str) -> String {
    format!(
        "[key_value_store.default]\ntype = \"memory\"\n\n\
         [[client_tls]]\ncomponent_ids = [\"{component}\"]\nhosts = [\"{host}\"]\n\
         ca_roots_file = \"ca.pem\"\n"
    )
}

fn refused_by_tls((status, body): &(u16, String)) -> bool {
    *status == 502 && body.contains("Tls")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tls_entries_trust_their_ca_for_their_components_and_hosts_only() {
    let ca = TestCa::new(&["localhost", "127.0.0.1"]);
    let dir = tempfile::tempdir().unwrap();
    ca.write_pem(dir.path(), "ca.pem");
    let upstream = Upstream::start_tls(Upstream::hello, ca.server.clone()).await;
    let port = upstream.addr.port();
    let named = [
        format!("https://localhost:{port}"),
        format!("https://127.0.0.1:{port}"),
    ];
    let url = format!("/fetch?url=https://localhost:{port}/x");

    let config = runtime_config(dir.path(), &client_tls("guest", "localhost"));
    let host = fetcher(&named, |o| o.runtime_config = Some(config)).await;
    assert_eq!(host.get(&url).await, (200, "200 hello".into()));
    // The same server under another host name the entry does not list.
    let other_host = host
        .get(&format!("/fetch?url=https://127.0.0.1:{port}/x"))
        .await;
    assert!(refused_by_tls(&other_host), "{other_host:?}");
    host.stop().await;

    // An entry for another component, or for another host, leaves the web roots alone.
    for (component, entry_host) in [("other", "localhost"), ("guest", "127.0.0.1")] {
        let config = runtime_config(dir.path(), &client_tls(component, entry_host));
        let host = fetcher(&named, |o| o.runtime_config = Some(config)).await;
        let answer = host.get(&url).await;
        assert!(
            refused_by_tls(&answer),
            "{component} {entry_host}: {answer:?}"
        );
        host.stop().await;
    }

    // No entry at all: the web roots only.
    let host = fetcher(&named, |_| {}).await;
    let answer = host.get(&url).await;
    assert!(refused_by_tls(&answer), "{answer:?}");
    host.stop().await;
    assert_eq!(upstream.hosts(), [format!("localhost:{port}")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tls_entries_apply_to_hosts_reached_through_a_wildcard() {
    let ca = TestCa::new(&["cimd.test"]);
    let dir = tempfile::tempdir().unwrap();
    ca.write_pem(dir.path(), "ca.pem");
    let upstream = Upstream::start_tls(Upstream::hello, ca.server.clone()).await;
    let port = upstream.addr.port();
    let resolver = TableResolver::new(&[("cimd.test", &["127.0.0.1"])]);
    let url = format!("/fetch?url=https://cimd.test:{port}/x");
    let wildcard = ["https://*:*".to_owned()];
    for (entry_host, trusted) in [("cimd.test", true), ("elsewhere.test", false)] {
        let config = runtime_config(dir.path(), &client_tls("guest", entry_host));
        let host = fetcher(&wildcard, |o| {
            o.runtime_config = Some(config);
            o.outbound_allow_private = true;
            o.resolver = resolver.clone();
        })
        .await;
        let answer = host.get(&url).await;
        if trusted {
            assert_eq!(answer, (200, "200 hello".into()));
        } else {
            assert!(refused_by_tls(&answer), "{answer:?}");
        }
        host.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_ca_files_are_trusted_on_both_paths() {
    let ca = TestCa::new(&["localhost", "cimd.test"]);
    let dir = tempfile::tempdir().unwrap();
    let pem = ca.write_pem(dir.path(), "ca.pem");
    let upstream = Upstream::start_tls(Upstream::hello, ca.server.clone()).await;
    let port = upstream.addr.port();
    let resolver = TableResolver::new(&[("cimd.test", &["127.0.0.1"])]);
    let hosts = [
        "https://*:*".to_owned(),
        format!("https://localhost:{port}"),
    ];
    let start = |files: Vec<PathBuf>| {
        fetcher(&hosts, |o| {
            o.outbound_ca_files = files;
            o.outbound_allow_private = true;
            o.resolver = resolver.clone();
        })
    };
    let named = format!("/fetch?url=https://localhost:{port}/x");
    let wildcard = format!("/fetch?url=https://cimd.test:{port}/x");

    let host = start(vec![pem]).await;
    assert_eq!(host.get(&named).await, (200, "200 hello".into()));
    assert_eq!(host.get(&wildcard).await, (200, "200 hello".into()));
    host.stop().await;

    let host = start(Vec::new()).await;
    for url in [&named, &wildcard] {
        let answer = host.get(url).await;
        assert!(refused_by_tls(&answer), "{url}: {answer:?}");
    }
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tls_presents_the_client_certificate_it_names() {
    let ca = TestCa::new(&["localhost"]).requiring_client_certificates();
    let dir = tempfile::tempdir().unwrap();
    ca.write_pem(dir.path(), "ca.pem");
    ca.write_client_certificate(dir.path());
    let upstream = Upstream::start_tls(Upstream::hello, ca.server.clone()).await;
    let port = upstream.addr.port();
    let named = [format!("https://localhost:{port}")];
    let url = format!("/fetch?url=https://localhost:{port}/x");
    let with_certificate = format!(
        "{}client_cert_file = \"client.pem\"\nclient_private_key_file = \"client.key\"\n",
        client_tls("guest", "localhost")
    );
    for (text, accepted) in [
        (with_certificate, true),
        (client_tls("guest", "localhost"), false),
    ] {
        let config = runtime_config(dir.path(), &text);
        let host = fetcher(&named, |o| o.runtime_config = Some(config)).await;
        let answer = host.get(&url).await;
        if accepted {
            assert_eq!(answer, (200, "200 hello".into()));
        } else {
            // The server ends the handshake: no response, a connection-level error.
            assert_eq!(answer.0, 502, "{answer:?}");
        }
        host.stop().await;
    }
    assert_eq!(upstream.hosts(), [format!("localhost:{port}")]);
}

#[test]
fn unreadable_roots_and_unknown_client_tls_keys_stop_the_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(support::MapStore::new());
    let manifest = support::write_app(dir.path(), &single_component_manifest(""), None);
    std::fs::write(dir.path().join("not-pem.pem"), "hello\n").unwrap();
    let start = |configure: &dyn Fn(&mut Options)| {
        let mut options = support::options(&store);
        configure(&mut options);
        Server::new(&manifest, options)
            .err()
            .expect("the host started")
            .to_string()
    };
    let missing = dir.path().join("missing.pem");
    let error = start(&|o| o.outbound_ca_files = vec![missing.clone()]);
    assert!(
        error.starts_with("outbound TLS: ") && error.contains("missing.pem"),
        "{error}"
    );
    let not_pem = dir.path().join("not-pem.pem");
    let error = start(&|o| o.outbound_ca_files = vec![not_pem.clone()]);
    assert!(error.contains("not-pem.pem: no PEM certificate"), "{error}");

    let config = runtime_config(
        dir.path(),
        "[[client_tls]]\ncomponent_ids = [\"guest\"]\nhosts = [\"h.test\"]\n\
         ca_use_webpki_roots = true\nca_root_file = \"ca.pem\"\n",
    );
    let error = start(&|o| o.runtime_config = Some(config.clone()));
    assert!(
        error.contains("runtime-config.toml")
            && error.contains("[[client_tls]] entry 1")
            && error.contains("unknown field `ca_root_file`"),
        "{error}"
    );
}

/// `mcp-auth serve` of the test guest allowed `https://localhost:PORT`, in `dir`.
fn serve_fetcher(dir: &Path, port: u16, args: &[&str]) -> std::process::Command {
    let manifest = single_component_manifest(&format!(
        "allowed_outbound_hosts = [\"https://localhost:{port}\"]\n"
    ));
    crate::cli::serve(dir, &manifest, args)
}

/// The system store, through the real binary: `SSL_CERT_FILE` names the test's CA (in the
/// child's environment only), trusted with `--outbound-system-roots` (or its variable) and not
/// without.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_system_store_is_trusted_only_when_asked() {
    let ca = TestCa::new(&["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let pem = ca.write_pem(dir.path(), "system-ca.pem");
    let upstream = Upstream::start_tls(Upstream::hello, ca.server.clone()).await;
    let port = upstream.addr.port();
    let url = format!("/fetch?url=https://localhost:{port}/x");
    let runs: [(&[&str], Option<&str>, bool); 3] = [
        (&["--outbound-system-roots"], None, true),
        (&[], Some("true"), true),
        (&[], None, false),
    ];
    for (args, variable, trusted) in runs {
        let mut command = serve_fetcher(dir.path(), port, args);
        command
            .env("SSL_CERT_FILE", &pem)
            .env_remove("SSL_CERT_DIR");
        match variable {
            Some(value) => command.env("MCP_AUTH_OUTBOUND_SYSTEM_ROOTS", value),
            None => command.env_remove("MCP_AUTH_OUTBOUND_SYSTEM_ROOTS"),
        };
        let serving = crate::cli::Serving::start_app(command);
        let answer = support::request(serving.addr, "GET", &url, Vec::new(), &[]).await;
        let (status, log) = serving.terminate();
        assert!(status.success(), "{log}");
        if trusted {
            assert_eq!(answer, (200, "200 hello".into()), "{args:?} {variable:?}");
        } else {
            assert!(refused_by_tls(&answer), "{answer:?}");
        }
    }
    assert_eq!(upstream.hosts().len(), 2);
}

/// `--outbound-ca-file` (a comma list), and its start-up errors, through the real binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_ca_file_flags_trust_their_files_or_stop_the_start_up() {
    let ca = TestCa::new(&["localhost"]);
    let other = TestCa::new(&["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let pem = ca.write_pem(dir.path(), "ca.pem");
    let other_pem = other.write_pem(dir.path(), "other.pem");
    let upstream = Upstream::start_tls(Upstream::hello, ca.server.clone()).await;
    let port = upstream.addr.port();
    let files = format!("{},{}", other_pem.display(), pem.display());
    let serving = crate::cli::Serving::start_app(serve_fetcher(
        dir.path(),
        port,
        &["--outbound-ca-file", &files],
    ));
    let answer = support::request(
        serving.addr,
        "GET",
        &format!("/fetch?url=https://localhost:{port}/x"),
        Vec::new(),
        &[],
    )
    .await;
    let (status, log) = serving.terminate();
    assert!(status.success(), "{log}");
    assert_eq!(answer, (200, "200 hello".into()));

    let missing = dir.path().join("missing.pem");
    std::fs::write(
        dir.path().join("runtime-config.toml"),
        "[[client_tls]]\ncomponent_ids = [\"guest\"]\nhosts = [\"localhost:443\"]\n",
    )
    .unwrap();
    let config = dir.path().join("runtime-config.toml");
    for (args, expected) in [
        (
            vec![
                "--outbound-ca-file".to_owned(),
                missing.display().to_string(),
            ],
            "missing.pem".to_owned(),
        ),
        (
            vec!["--runtime-config".to_owned(), config.display().to_string()],
            "\"localhost:443\" in `hosts` has a port".to_owned(),
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = serve_fetcher(dir.path(), port, &args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("mcp-auth: outbound TLS: ") && stderr.contains(&expected),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
