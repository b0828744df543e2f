//! HTML pages: one shell, every interpolated string escaped. Pages load nothing from
//! elsewhere (see the CSP in [`Response::html`]).

use crate::http::Response;

/// Escape text for HTML element content and double-quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// A whole page around `body_html` (already escaped by the caller). `title` is escaped here.
pub fn page(status: u16, title: &str, body_html: &str) -> Response {
    let title = escape(title);
    Response::html(
        status,
        format!(
            r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem; color: #1a1a1a; }}
h1 {{ font-size: 1.4rem; }}
label {{ display: block; margin: .8rem 0 .2rem; }}
input[type=text], input[type=password] {{ width: 100%; padding: .5rem; font-size: 1rem; box-sizing: border-box; }}
button {{ margin: 1rem .5rem 0 0; padding: .5rem 1.2rem; font-size: 1rem; }}
.host {{ font-family: monospace; font-weight: bold; }}
.error {{ color: #a40000; }}
</style>
</head>
<body>
<h1>{title}</h1>
{body_html}
</body>
</html>
"#
        ),
    )
}

/// An error shown to the user rather than redirected (RFC 6749 §4.1.2.1: never redirect to an
/// unverified redirect URI).
pub fn error_page(status: u16, title: &str, message: &str) -> Response {
    page(
        status,
        title,
        &format!(r#"<p class="error">{}</p>"#, escape(message)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_escaped() {
        assert_eq!(
            escape(r#"<script>alert("x")</script>&'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
        let page = error_page(400, "<b>", "<img src=x onerror=alert(1)>");
        let body = String::from_utf8(page.body).unwrap();
        assert!(!body.contains("<img"));
        assert!(!body.contains("<b>"));
    }
}
