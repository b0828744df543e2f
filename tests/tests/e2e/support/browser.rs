//! A plain HTTP client that behaves like a browser where the tests need it to: it keeps
//! cookies, never follows a redirect by itself (the test follows them, one step at a time),
//! and submits the forms of HTML pages with their hidden fields.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

/// One answer.
#[derive(Debug, Clone)]
pub struct Page {
    /// The URL that answered.
    pub url: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Page {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The redirect's target, resolved against this page's URL.
    pub fn location(&self) -> String {
        assert!(
            (300..400).contains(&self.status),
            "expected a redirect from {}, got {}: {}",
            self.url,
            self.status,
            self.body
        );
        let location = self.header("location").expect("location header");
        resolve(&self.url, location)
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} {}: not JSON ({e}): {}",
                self.status, self.url, self.body
            )
        })
    }

    /// The OAuth `error` of a JSON error answer.
    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error in {}", self.body))
            .to_string()
    }

    /// The page's only (or first) form: its absolute action and its hidden fields.
    pub fn form(&self) -> Form {
        let start = self
            .body
            .find("<form")
            .unwrap_or_else(|| panic!("no form on {} ({}): {}", self.url, self.status, self.body));
        let end = self.body[start..]
            .find("</form>")
            .map_or(self.body.len(), |e| start + e);
        let html = &self.body[start..end];
        let form_tag = &html[..html.find('>').expect("form tag")];
        let action = attribute(form_tag, "action").unwrap_or_default();
        let mut hidden = Vec::new();
        for input in html.split("<input").skip(1) {
            let tag = &input[..input.find('>').unwrap_or(input.len())];
            if attribute(tag, "type").as_deref() == Some("hidden") {
                if let Some(name) = attribute(tag, "name") {
                    hidden.push((name, attribute(tag, "value").unwrap_or_default()));
                }
            }
        }
        Form {
            action: resolve(&self.url, &action),
            hidden,
        }
    }
}

/// A form found on a page.
#[derive(Debug, Clone)]
pub struct Form {
    pub action: String,
    pub hidden: Vec<(String, String)>,
}

/// The query parameters of a URL.
pub fn query_of(url: &str) -> BTreeMap<String, String> {
    url::Url::parse(url)
        .unwrap_or_else(|e| panic!("{url}: {e}"))
        .query_pairs()
        .into_owned()
        .collect()
}

/// How long one request may take before the browser gives up: only a guard against a test
/// hanging forever (the host's own request timeout is 30 s), no assertion about speed.
const REQUEST_LIMIT: Duration = Duration::from_secs(60);

/// See the module documentation.
pub struct Browser {
    agent: ureq::Agent,
    /// name → value. Like a browser's, one jar for every port of 127.0.0.1.
    cookies: Mutex<BTreeMap<String, String>>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Browser {
        let config = ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_LIMIT))
            .build();
        Browser {
            agent: config.into(),
            cookies: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn get(&self, url: &str) -> Page {
        self.get_with(url, &[])
    }

    /// GET with extra headers.
    pub fn get_with(&self, url: &str, headers: &[(&str, &str)]) -> Page {
        let mut request = self.agent.get(url);
        for (name, value) in self.headers(headers) {
            request = request.header(name, value);
        }
        request
            .call()
            .and_then(|response| self.page(url, response))
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
    }

    /// The status of a GET, or `None` when nothing answers (for polling a starting server).
    pub fn try_get(&self, url: &str) -> Option<u16> {
        self.agent.get(url).call().ok().map(|r| r.status().as_u16())
    }

    /// Follows the redirect of `page` (a GET, as browsers do after a 302/303).
    pub fn follow(&self, page: &Page) -> Page {
        self.get(&page.location())
    }

    /// POSTs `fields` form-encoded.
    pub fn post_form(&self, url: &str, fields: &[(&str, &str)]) -> Page {
        self.post_form_with(url, fields, &[])
    }

    /// POSTs `fields` form-encoded, with extra headers.
    pub fn post_form_with(
        &self,
        url: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        self.try_post_form_with(url, fields, headers)
            .unwrap_or_else(|e| panic!("POST {url}: {e}"))
    }

    /// [`Browser::post_form_with`], with a transport failure (nothing listening, the
    /// connection cut mid-answer, the time limit) as an error instead of a panic.
    pub fn try_post_form_with(
        &self,
        url: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Result<Page, ureq::Error> {
        let mut request = self.agent.post(url);
        for (name, value) in self.headers(headers) {
            request = request.header(name, value);
        }
        let response = request.send_form(fields.iter().copied())?;
        self.page(url, response)
    }

    /// POSTs a JSON body, with extra headers.
    pub fn post_json(&self, url: &str, body: &Value, headers: &[(&str, &str)]) -> Page {
        self.send_json("POST", url, Some(body), headers)
    }

    /// Any method with an optional JSON body.
    pub fn send_json(
        &self,
        method: &str,
        url: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Page {
        self.try_send_json(method, url, body, headers)
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
    }

    /// [`Browser::send_json`], with a transport failure as an error instead of a panic.
    pub fn try_send_json(
        &self,
        method: &str,
        url: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<Page, ureq::Error> {
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(url)
            .header("content-type", "application/json");
        let request = headers
            .iter()
            .fold(request, |r, (name, value)| r.header(*name, *value));
        let body = body.map(Value::to_string).unwrap_or_default();
        let response = self.agent.run(request.body(body).expect("request"))?;
        self.page(url, response)
    }

    /// Submits the form of `page` with its hidden fields and `fields` (a button's
    /// `name`/`value` is one of them).
    pub fn submit(&self, page: &Page, fields: &[(&str, &str)]) -> Page {
        let form = page.form();
        let mut all: Vec<(&str, &str)> = form
            .hidden
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        all.extend_from_slice(fields);
        self.post_form(&form.action, &all)
    }

    /// `extra`, and the cookies of the jar.
    fn headers(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> = extra
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        let jar = self.cookies.lock().expect("cookie jar");
        if !jar.is_empty() {
            let value = jar
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            headers.push(("cookie".into(), value));
        }
        headers
    }

    fn page(
        &self,
        url: &str,
        mut response: ureq::http::Response<ureq::Body>,
    ) -> Result<Page, ureq::Error> {
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut jar = self.cookies.lock().expect("cookie jar");
        for (_, cookie) in headers.iter().filter(|(n, _)| n == "set-cookie") {
            let pair = cookie.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                let expired = cookie.to_ascii_lowercase().contains("max-age=0");
                if expired || value.is_empty() {
                    jar.remove(name.trim());
                } else {
                    jar.insert(name.trim().to_string(), value.trim().to_string());
                }
            }
        }
        drop(jar);
        let body = response.body_mut().read_to_string()?;
        Ok(Page {
            url: url.to_string(),
            status: response.status().as_u16(),
            headers,
            body,
        })
    }
}

/// `reference` resolved against `base` (RFC 3986 §5).
fn resolve(base: &str, reference: &str) -> String {
    url::Url::parse(base)
        .and_then(|b| b.join(reference))
        .unwrap_or_else(|e| panic!("cannot resolve {reference} against {base}: {e}"))
        .to_string()
}

/// The value of HTML attribute `name` in a tag, unescaped.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let marker = format!("{name}=\"");
    let mut rest = tag;
    loop {
        let at = rest.find(&marker)?;
        // A whole attribute name: preceded by whitespace.
        let whole = rest[..at].ends_with(char::is_whitespace);
        let value_start = at + marker.len();
        if whole {
            let end = rest[value_start..].find('"')?;
            return Some(unescape(&rest[value_start..value_start + end]));
        }
        rest = &rest[value_start..];
    }
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}
