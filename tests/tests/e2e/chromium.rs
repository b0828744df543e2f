//! The pages people see, in a real browser (headless Chromium): the login page by keyboard,
//! consent by mouse, the device verification pages, error pages, hostile client names,
//! CSRF tokens, cross-site posts and framing. The client's redirect URI and the hostile
//! sites are small servers of the test's own, on other loopback ports.

use serde_json::{json, Value};

use crate::device::{device_authorization, poll};
use crate::support::chromium::{Chromium, Key};
use crate::support::site::Site;
use crate::support::taskmanager::{self, FakeTaskManager};
use crate::support::*;

const STATE: &str = "st-1";

/// A host, a site standing for the client (and for hostile pages), a browser for the
/// client's own HTTP calls, and Chromium for the user. Chromium goes first when dropped.
struct Scene {
    chromium: Chromium,
    client: Browser,
    site: Site,
    host: Host,
    _dir: tempfile::TempDir,
}

impl Scene {
    fn new() -> Scene {
        let dir = tempfile::tempdir().expect("temp dir");
        let host = Host::start(dir.path(), &HostOptions::default());
        Scene {
            chromium: Chromium::start(),
            client: Browser::new(),
            site: Site::start(),
            host,
            _dir: dir,
        }
    }

    /// The site's `/callback`: the registered [`REDIRECT`] on another port, which matches
    /// it (RFC 8252 §7.3).
    fn redirect_uri(&self) -> String {
        self.site.url("/callback")
    }

    /// The client's authorization request, sending the user to `redirect_uri`.
    fn authorization_url(&self, client_id: &str, redirect_uri: &str) -> String {
        let mut url = url::Url::parse(&authorization_url(&self.host.base, client_id, STATE))
            .expect("authorization URL");
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .into_owned()
            .map(|(name, value)| match name.as_str() {
                "redirect_uri" => (name, redirect_uri.to_string()),
                _ => (name, value),
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        url.to_string()
    }

    /// Opens the client's authorization request in Chromium; returns the login page's URL.
    fn open_login(&self, client_id: &str) -> String {
        let c = &self.chromium;
        c.goto(&self.authorization_url(client_id, &self.redirect_uri()));
        c.wait_for_title("Sign in");
        c.url()
    }

    /// On the login page, by keyboard only: the username has the focus, Tab moves to the
    /// password, Enter submits.
    fn sign_in_by_keyboard(&self) {
        let c = &self.chromium;
        assert_eq!(
            c.focused(),
            "username",
            "the login page focuses the username"
        );
        c.type_keys("demo");
        c.press(Key::Tab);
        assert_eq!(c.focused(), "password", "Tab moves to the password");
        c.type_keys("demo");
        c.press(Key::Enter);
    }

    /// The parameters the client's redirect URI received (after checking `state`, `iss`).
    fn client_redirect(&self) -> std::collections::BTreeMap<String, String> {
        let c = &self.chromium;
        let prefix = format!("{}?", self.redirect_uri());
        c.wait_for("the client's redirect URI", |c| {
            c.url().starts_with(&prefix)
        });
        let params = query_of(&c.url());
        assert_eq!(params["state"], STATE);
        assert_eq!(params["iss"], issuer_of(&self.host.base));
        params
    }

    /// Did the client's redirect URI get any request?
    fn client_was_called(&self) -> bool {
        self.site
            .requests()
            .iter()
            .any(|r| r.starts_with("/callback"))
    }
}

#[test]
fn login_by_keyboard_and_consent_by_mouse_end_at_the_client_with_a_code() {
    let scene = Scene::new();
    let c = &scene.chromium;
    let client_id = register_public_client(&scene.client, &scene.host.base);
    scene.open_login(&client_id);

    assert_eq!(c.status(), 200);
    assert_eq!(c.text("h1"), "Sign in");
    assert_eq!(c.text("label[for=username]"), "Username");
    assert_eq!(c.text("label[for=password]"), "Password");
    assert!(c.exists("input#username[type=text][autocomplete=username]"));
    assert!(c.exists("input#password[type=password][autocomplete=current-password]"));
    assert_eq!(c.text("form button[type=submit]"), "Sign in");
    // Who asks and where the user will be sent, before any password is typed.
    let login = c.text("body");
    assert!(login.contains("E2E Client asks you to sign in"), "{login}");
    assert!(login.contains("sent to 127.0.0.1"), "{login}");
    scene.sign_in_by_keyboard();

    c.wait_for_title("Authorize access");
    assert_eq!(c.status(), 200);
    let consent = c.text("body");
    assert!(consent.contains("E2E Client asks to access"), "{consent}");
    assert!(consent.contains(RESOURCE), "{consent}");
    assert!(consent.contains("sent to 127.0.0.1"), "{consent}");
    for scope in ["mcp:read", "mcp:write", "offline_access"] {
        assert!(consent.contains(scope), "{consent}");
    }
    c.click("button[value=approve]");

    let params = scene.client_redirect();
    let redirect_uri = scene.redirect_uri();
    let tokens = tokens_of(&scene.client.post_form(
        &scene.host.url("/token"),
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &client_id),
            ("code", &params["code"]),
            ("code_verifier", VERIFIER),
            ("redirect_uri", &redirect_uri),
            ("resource", RESOURCE),
        ],
    ));
    let info = introspect(
        &scene.client,
        &scene.host.base,
        text(&tokens, "access_token"),
    );
    assert_eq!(info["sub"], "demo");
}

#[test]
fn deny_by_mouse_sends_access_denied_to_the_client() {
    let scene = Scene::new();
    let c = &scene.chromium;
    let client_id = register_public_client(&scene.client, &scene.host.base);
    scene.open_login(&client_id);
    scene.sign_in_by_keyboard();
    c.wait_for_title("Authorize access");
    c.click("button[value=deny]");

    let params = scene.client_redirect();
    assert_eq!(params["error"], "access_denied");
    assert!(!params.contains_key("code"), "{params:?}");
}

#[test]
fn device_codes_are_entered_in_any_case_with_or_without_the_dash() {
    let scene = Scene::new();
    let c = &scene.chromium;
    let host = &scene.host;
    let client = register(
        &scene.client,
        &host.base,
        json!({
            "client_name": "E2E Device",
            "grant_types": [DEVICE_GRANT],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
        }),
    );
    let client_id = text(&client, "client_id");

    // Approved: typed in lower case with the dash, after a wrong code.
    let start = device_authorization(&scene.client, host, client_id);
    let shown = text(&start, "user_code");
    assert_eq!(shown.len(), 9, "XXXX-XXXX: {shown}");
    c.goto(text(&start, "verification_uri"));
    c.wait_for_title("Connect a device");
    assert_eq!(c.text("label[for=user_code]"), "Code");
    assert_eq!(c.focused(), "user_code", "the code field has the focus");
    c.type_keys("AAAA-AAAA");
    c.press(Key::Enter);
    c.wait_for("the wrong code's answer", |c| c.exists("p.error"));
    assert_eq!(c.status(), 400);
    assert!(
        c.text("p.error").contains("not valid"),
        "{}",
        c.text("body")
    );
    assert_eq!(c.focused(), "user_code");
    c.script("document.getElementById('user_code').select()", vec![]);
    c.type_keys(&shown.to_lowercase());
    c.press(Key::Enter);
    c.wait_for_title("Sign in");
    scene.sign_in_by_keyboard();
    c.wait_for_title("Authorize access");
    let consent = c.text("body");
    assert!(consent.contains("E2E Device asks to access"), "{consent}");
    assert!(
        consent.contains(&format!("shows the code {shown}")),
        "{consent}"
    );
    c.click("button[value=approve]");
    c.wait_for_title("Device approved");
    let device_code = text(&start, "device_code");
    let tokens = tokens_of(&poll(&scene.client, host, client_id, device_code));
    let info = introspect(&scene.client, &host.base, text(&tokens, "access_token"));
    assert_eq!(info["sub"], "demo");

    // Denied: typed in lower case without the dash.
    let start = device_authorization(&scene.client, host, client_id);
    c.goto(text(&start, "verification_uri"));
    c.wait_for_title("Connect a device");
    c.type_keys(&text(&start, "user_code").replace('-', "").to_lowercase());
    c.press(Key::Enter);
    c.wait_for_title("Sign in");
    scene.sign_in_by_keyboard();
    c.wait_for_title("Authorize access");
    c.click("button[value=deny]");
    c.wait_for_title("Denied");
    let denied = poll(&scene.client, host, client_id, text(&start, "device_code"));
    assert_eq!(denied.error(), "access_denied");
}

#[test]
fn client_errors_at_authorize_are_pages_not_redirects() {
    let scene = Scene::new();
    let c = &scene.chromium;
    let client_id = register_public_client(&scene.client, &scene.host.base);
    let cases = [
        (
            scene.authorization_url("no-such-client", &scene.redirect_uri()),
            "The client is unknown",
        ),
        (
            scene.authorization_url(&client_id, &scene.site.url("/elsewhere")),
            "The redirect_uri is not registered for this client.",
        ),
    ];
    for (url, message) in cases {
        c.goto(&url);
        c.wait_for_title("Invalid request");
        assert!(
            c.url().starts_with(&scene.host.url("/authorize?")),
            "stays on /authorize"
        );
        assert_eq!(c.status(), 400);
        assert_eq!(c.text("h1"), "Invalid request");
        assert!(c.text("p.error").contains(message), "{}", c.text("body"));
    }
    assert!(
        scene.site.requests().is_empty(),
        "{:?}",
        scene.site.requests()
    );
}

#[test]
fn a_hostile_client_name_is_shown_as_text_and_runs_nothing() {
    let scene = Scene::new();
    let c = &scene.chromium;
    let name =
        r#"<script>document.title='pwned'</script><img src=x onerror="document.title='pwned'">"#;
    let client = register(
        &scene.client,
        &scene.host.base,
        json!({
            "client_name": name,
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
        }),
    );
    scene.open_login(text(&client, "client_id"));
    scene.sign_in_by_keyboard();
    c.wait_for_title("Authorize access");

    assert_eq!(c.text("p strong"), name);
    assert!(
        !c.exists("body script, body img"),
        "an element was injected"
    );
    assert_eq!(c.title(), "Authorize access");

    // Even a script element that did get into the page would not run: the CSP forbids it.
    let blocked = c.script(
        "let violation = null;
         document.addEventListener('securitypolicyviolation', e => { violation = e.effectiveDirective; });
         const script = document.createElement('script');
         script.textContent = \"document.title = 'pwned'\";
         document.body.appendChild(script);
         return new Promise(resolve => setTimeout(() => resolve(violation), 100));",
        vec![],
    );
    assert_eq!(blocked, Value::from("script-src-elem"));
    assert_eq!(c.title(), "Authorize access");
}

#[test]
fn forms_without_their_csrf_token_are_refused() {
    let scene = Scene::new();
    let c = &scene.chromium;
    let client_id = register_public_client(&scene.client, &scene.host.base);
    let login = scene.open_login(&client_id);

    // The login form without its token: refused, and not signed in.
    assert_eq!(remove_csrf(c), 1);
    scene.sign_in_by_keyboard();
    c.wait_for_title("Request refused");
    assert_eq!(c.status(), 403);
    c.goto(&login);
    c.wait_for_title("Sign in");

    // The consent form with a forged token: refused, and the client gets nothing.
    scene.sign_in_by_keyboard();
    c.wait_for_title("Authorize access");
    let forged = c.script(
        "const fields = document.querySelectorAll('form input[name=csrf]');
         fields.forEach(f => { f.value = 'forged' + f.value.slice(6); });
         return fields.length;",
        vec![],
    );
    assert_eq!(forged, Value::from(1));
    c.click("button[value=approve]");
    c.wait_for_title("Request refused");
    assert_eq!(c.status(), 403);
    assert!(!scene.client_was_called(), "{:?}", scene.site.requests());

    // The device form without its token.
    let client = register(
        &scene.client,
        &scene.host.base,
        json!({
            "grant_types": [DEVICE_GRANT],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
        }),
    );
    let device = text(&client, "client_id");
    let start = device_authorization(&scene.client, &scene.host, device);
    c.goto(text(&start, "verification_uri_complete"));
    c.wait_for_title("Connect a device");
    assert_eq!(remove_csrf(c), 1);
    c.click("form button[type=submit]");
    c.wait_for_title("Request refused");
    assert_eq!(c.status(), 403);
    let pending = poll(
        &scene.client,
        &scene.host,
        device,
        text(&start, "device_code"),
    );
    assert_eq!(pending.error(), "authorization_pending");
}

#[test]
fn cross_site_posts_neither_sign_in_nor_approve() {
    let scene = Scene::new();
    let c = &scene.chromium;
    let host = &scene.host;
    let client_id = register_public_client(&scene.client, &host.base);

    // Login CSRF: the attacker starts a sign-in of its own and has the user's browser (in
    // the middle of a sign-in of its own) post the attacker's session, token and password
    // from another site. The sign-in is not this browser's: refused.
    let login = scene.open_login(&client_id);
    let attacker = Browser::new();
    let to_login = attacker.get(&authorization_url(&host.base, &client_id, STATE));
    let attacker_login = attacker.follow(&to_login);
    let form = attacker_login.form();
    let mut fields = form.hidden.clone();
    fields.extend([
        ("username".into(), "demo".into()),
        ("password".into(), "demo".into()),
    ]);
    scene
        .site
        .put("/login-csrf", &auto_submit(&form.action, &fields));
    c.goto(&scene.site.url("/login-csrf"));
    c.wait_for_title("Sign-in refused");
    assert_eq!(c.status(), 403);
    let still = attacker.get(&attacker_login.url);
    assert_eq!(still.status, 200, "the attacker's sign-in is still open");

    // Consent CSRF: the user is on the consent page; another site posts an approval of
    // that very sign-in (its session id leaked), without the form's token.
    c.goto(&login);
    c.wait_for_title("Sign in");
    scene.sign_in_by_keyboard();
    c.wait_for_title("Authorize access");
    let session = c.script(
        "return document.querySelector('form input[name=session]').value",
        vec![],
    );
    let session = session.as_str().expect("the session field").to_string();
    let fields = [
        ("session".to_string(), session),
        ("decision".to_string(), "approve".to_string()),
    ];
    scene.site.put(
        "/consent-csrf",
        &auto_submit(&host.url("/consent"), &fields),
    );
    c.goto(&scene.site.url("/consent-csrf"));
    c.wait_for_title("Request refused");
    assert_eq!(c.status(), 403);
    assert!(!scene.client_was_called(), "{:?}", scene.site.requests());
}

#[test]
fn the_return_from_a_provider_on_another_site_still_finds_the_sign_in() {
    // TaskManager as `localhost`, we as `127.0.0.1`: two sites, so its redirect back to our
    // /oauth/callback is a cross-site navigation, which must still carry the cookie that
    // binds the sign-in to this browser (`SameSite=Lax`; `Strict` would lose it).
    let tm = FakeTaskManager::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let tm_site = tm.base.replace("127.0.0.1", "localhost");
    let options = HostOptions::default()
        .variable("UPSTREAM_PROVIDER", "taskmanager")
        .variable("TASKMANAGER_OAUTH_HOST", &tm_site)
        .variable("TASKMANAGER_CLIENT_ID", taskmanager::CLIENT_ID)
        .variable("TASKMANAGER_CLIENT_SECRET", taskmanager::CLIENT_SECRET);
    let host = Host::start(dir.path(), &options);
    tm.register_redirect_uri(&host.url("/oauth/callback"));
    let client = Browser::new();
    let client_id = register_public_client(&client, &host.base);
    let c = Chromium::start();

    c.goto(&authorization_url(&host.base, &client_id, STATE));
    c.wait_for_title("TaskManager");
    assert!(c.url().starts_with(&tm_site), "{}", c.url());
    c.script(
        "document.querySelector('input[name=username]').value = arguments[0];
         document.querySelector('input[name=password]').value = arguments[1];
         document.forms[0].submit();",
        vec![
            Value::from(taskmanager::USERNAME),
            Value::from(taskmanager::PASSWORD),
        ],
    );
    c.wait_for_title("Authorize access");
    assert!(
        c.url().starts_with(&host.url("/oauth/callback")),
        "{}",
        c.url()
    );
    c.click("button[value=approve]");
    c.wait_for("the client's redirect URI", |c| {
        c.url().starts_with(REDIRECT)
    });
    assert_eq!(query_of(&c.url())["state"], STATE);
}

#[test]
fn the_pages_cannot_be_framed() {
    let scene = Scene::new();
    let c = &scene.chromium;
    let client_id = register_public_client(&scene.client, &scene.host.base);
    let login = scene.open_login(&client_id);
    scene.site.put(
        "/plain",
        "<!doctype html><title>plain</title><p id=content>framed fine</p>",
    );
    let frames = [scene.site.url("/plain"), login, scene.host.url("/device")];
    let html: String = frames
        .iter()
        .map(|src| format!(r#"<iframe src="{src}"></iframe>"#))
        .collect();
    scene.site.put(
        "/framing",
        &format!("<!doctype html><title>framing</title>{html}"),
    );
    c.goto(&scene.site.url("/framing"));

    // The control: a page that allows framing shows in its frame.
    c.enter_frame(0);
    c.wait_for("the plain page in its frame", |c| c.exists("#content"));
    c.leave_frame();
    for (index, src) in frames.iter().enumerate().skip(1) {
        c.enter_frame(u16::try_from(index).expect("a few frames"));
        assert!(!c.exists("#username, #user_code"), "{src} shows in a frame");
        c.leave_frame();
    }
}

/// Removes the CSRF fields of the page's forms; returns how many there were.
fn remove_csrf(c: &Chromium) -> Value {
    c.script(
        "const fields = document.querySelectorAll('form input[name=csrf]');
         fields.forEach(f => f.remove());
         return fields.length;",
        vec![],
    )
}

/// A page that posts `fields` to `action` as soon as it loads.
fn auto_submit(action: &str, fields: &[(String, String)]) -> String {
    let inputs: String = fields
        .iter()
        .map(|(name, value)| format!(r#"<input type="hidden" name="{name}" value="{value}">"#))
        .collect();
    format!(
        r#"<!doctype html><title>elsewhere</title>
<form method="post" action="{action}">{inputs}</form>
<script>document.forms[0].submit()</script>"#
    )
}
