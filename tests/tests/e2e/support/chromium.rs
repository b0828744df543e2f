//! Debian's Chromium, headless, driven over WebDriver by its `chromedriver`: a real browser
//! for the pages people see (login, consent, device entry, error pages), where the plain
//! HTTP [`super::Browser`] cannot tell whether focus, scripts, CSP or framing behave.
//!
//! Every [`Chromium`] has its own chromedriver (on an ephemeral port it picks itself), its
//! own browser process and a fresh profile, so tests share no cookies and run in parallel.
//! Chromedriver runs in a process group of its own, which also holds every browser process
//! it starts: dropping a [`Chromium`] (even while a test panics) ends the session and kills
//! that group.
//!
//! `CHROMIUM` and `CHROMEDRIVER` override `/usr/bin/chromium` and `/usr/bin/chromedriver`.

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource as _, KeyAction, KeyActions};
use fantoccini::error::CmdError;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

pub use fantoccini::key::Key;

/// How long chromedriver, a page or a condition may take before the test gives up. Only a
/// guard against hanging forever: no assertion is made about speed.
const LIMIT: Duration = Duration::from_secs(60);

/// The machine's network is closed: without these Chromium stalls on refused connections
/// (updates, sync, QUIC probes) before it serves a page.
const ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

/// A headless Chromium; see the module documentation.
pub struct Chromium {
    client: Option<Client>,
    runtime: tokio::runtime::Runtime,
    driver: Child,
    /// The profile (`--user-data-dir`) and chromedriver's output.
    dir: tempfile::TempDir,
}

impl Chromium {
    /// Starts chromedriver and a browser session with a fresh profile.
    pub fn start() -> Chromium {
        let chromium = program("CHROMIUM", "/usr/bin/chromium");
        let chromedriver = program("CHROMEDRIVER", "/usr/bin/chromedriver");
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("chromedriver.log");
        let out = std::fs::File::create(&log).expect("chromedriver log");
        let err = out.try_clone().expect("chromedriver log");
        let driver = Command::new(&chromedriver)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // A group of its own, inherited by the browser it starts: see `Drop`.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let mut this = Chromium {
            client: None,
            runtime,
            driver,
            dir,
        };
        let port = this.driver_port();
        let profile = this.dir.path().join("profile");
        let mut args: Vec<String> = ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let capabilities = json!({
            "goog:chromeOptions": { "binary": chromium, "args": args },
            "timeouts": { "pageLoad": LIMIT.as_millis() as u64, "script": LIMIT.as_millis() as u64 },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object")
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = this
            .runtime
            .block_on(
                ClientBuilder::new(connector)
                    .capabilities(capabilities)
                    .connect(&format!("http://127.0.0.1:{port}")),
            )
            .unwrap_or_else(|e| {
                panic!(
                    "no Chromium session from {}: {e}\n{}",
                    chromedriver.display(),
                    this.driver_log()
                )
            });
        this.client = Some(client);
        this
    }

    /// Opens `url` and waits for it to load.
    pub fn goto(&self, url: &str) {
        self.run(&format!("open {url}"), self.client().goto(url));
    }

    /// The URL of the page shown.
    pub fn url(&self) -> String {
        self.run("current URL", self.client().current_url())
            .to_string()
    }

    /// Waits until `done` holds (a page loaded by a click or a key may still be on its way).
    pub fn wait_for(&self, what: &str, done: impl Fn(&Chromium) -> bool) {
        let started = Instant::now();
        while !done(self) {
            assert!(
                started.elapsed() < LIMIT,
                "waited for {what}; at {}: {}",
                self.url(),
                self.text("body")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for a page titled `title`.
    pub fn wait_for_title(&self, title: &str) {
        self.wait_for(&format!("the page {title:?}"), |c| c.title() == title);
    }

    /// The HTTP status of the page shown, as Chromium received it.
    pub fn status(&self) -> u16 {
        let status = self.script(
            "return performance.getEntriesByType('navigation')[0].responseStatus",
            vec![],
        );
        status
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or_else(|| panic!("no response status for {}: {status}", self.url()))
    }

    pub fn title(&self) -> String {
        self.run("title", self.client().title())
    }

    /// The rendered text of the first element matching `css`.
    pub fn text(&self, css: &str) -> String {
        let element = self.find(css);
        self.run(&format!("text of {css}"), element.text())
    }

    /// Does any element match `css`?
    pub fn exists(&self, css: &str) -> bool {
        let found = self.run(
            &format!("find {css}"),
            self.client().find_all(Locator::Css(css)),
        );
        !found.is_empty()
    }

    /// The `id` of the element that has the keyboard focus (empty when none has an id).
    pub fn focused(&self) -> String {
        let element = self.run("active element", self.client().active_element());
        self.run("its id", element.attr("id")).unwrap_or_default()
    }

    /// A mouse click in the middle of the first element matching `css`.
    pub fn click(&self, css: &str) {
        let element = self.find(css);
        self.run(&format!("click {css}"), element.click());
    }

    /// Types `text` on the keyboard, into whatever has the focus; [`Key`]s are characters.
    pub fn type_keys(&self, text: &str) {
        let keys = text
            .chars()
            .fold(KeyActions::new("keyboard".into()), |keys, c| {
                keys.then(KeyAction::Down { value: c })
                    .then(KeyAction::Up { value: c })
            });
        self.run(
            &format!("type {text:?}"),
            self.client().perform_actions(keys),
        );
    }

    /// Presses one key.
    pub fn press(&self, key: Key) {
        self.type_keys(&key.to_string());
    }

    /// Runs `body` as a function in the page (WebDriver "Execute Script": the page's CSP
    /// does not apply to it, only to what it adds to the page).
    pub fn script(&self, body: &str, args: Vec<Value>) -> Value {
        self.run("script", self.client().execute(body, args))
    }

    /// Switches into the `index`th frame of the page.
    pub fn enter_frame(&self, index: u16) {
        self.run("enter frame", self.client().enter_frame(index));
    }

    /// Back to the page from a frame.
    pub fn leave_frame(&self) {
        self.run("leave frame", self.client().enter_parent_frame());
    }

    fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.run(
            &format!("find {css}"),
            self.client().find(Locator::Css(css)),
        )
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("a session")
    }

    /// Runs one WebDriver command to its end.
    fn run<T>(
        &self,
        what: &str,
        command: impl std::future::Future<Output = Result<T, CmdError>>,
    ) -> T {
        self.runtime
            .block_on(within(LIMIT, command))
            .unwrap_or_else(|_| panic!("{what}: no answer from Chromium"))
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    /// The port chromedriver listens on, from its start-up line.
    fn driver_port(&mut self) -> u16 {
        let started = Instant::now();
        loop {
            let log = self.driver_log();
            if let Some(port) = log
                .split("started successfully on port ")
                .nth(1)
                .and_then(|rest| rest.split('.').next())
                .and_then(|port| port.parse().ok())
            {
                return port;
            }
            let exited = matches!(self.driver.try_wait(), Ok(Some(_)));
            assert!(
                !exited && started.elapsed() < LIMIT,
                "chromedriver did not start:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn driver_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default()
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let briefly = Duration::from_secs(10);
            if std::thread::panicking() {
                let url = self.runtime.block_on(within(briefly, client.current_url()));
                let html = self.runtime.block_on(within(
                    briefly,
                    client.execute("return document.documentElement.outerHTML", vec![]),
                ));
                eprintln!("--- Chromium was at {url:?} ---\n{html:?}");
            }
            let _ = self.runtime.block_on(within(briefly, client.close()));
        }
        let group = i32::try_from(self.driver.id()).expect("a pid");
        // SAFETY: kill(2) with a negative pid signals the process group chromedriver leads
        // (see `process_group(0)` above); it touches no memory of ours.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
        let _ = self.driver.wait();
    }
}

/// `$variable`, or `default`, which must exist.
fn program(variable: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(variable).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.exists(),
        "{} not found: install Debian's `chromium` and `chromium-driver` packages (.ci/run does), \
         or point {variable} at it",
        path.display()
    );
    path
}

/// `future`, given up after `limit`. The timer is made inside the runtime (`block_on`), the
/// only place tokio's timers can be created.
async fn within<F: std::future::Future>(
    limit: Duration,
    future: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    tokio::time::timeout(limit, future).await
}
