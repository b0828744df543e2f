//! Any OpenID Connect provider, found by discovery (OpenID Connect Discovery 1.0 §4); the
//! user is the `sub` of the ID token, or of the userinfo answer when there is no ID token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{send_json, TokenResponse, UpstreamFailure};
use crate::env::Env;
use crate::http::OutgoingRequest;
use crate::records;
use crate::settings::Provider;

/// Where the discovery document is cached, and for how long.
const DISCOVERY_KEY: &str = "oidc/discovery";
const DISCOVERY_LIFETIME: u64 = 3600;

/// The parts of the provider's metadata we use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
}

/// The configured provider's metadata, from the store when fetched within the hour.
pub fn discovery(env: &Env) -> Result<Discovery, UpstreamFailure> {
    let Provider::Oidc { issuer, .. } = &env.settings.provider else {
        return Err(UpstreamFailure::Rejected(
            "the upstream provider is not OpenID Connect".into(),
        ));
    };
    // A store failure only costs a fetch; a document for another issuer (the configuration
    // changed) is as good as none.
    if let Ok(Some(cached)) = records::get::<Discovery>(env, DISCOVERY_KEY) {
        if same_issuer(&cached.issuer, issuer) {
            return Ok(cached);
        }
    }
    let document = parse_discovery(issuer, send_json(env, &discovery_request(issuer))?)?;
    let _ = records::put(
        env,
        DISCOVERY_KEY,
        &document,
        Some(env.now() + DISCOVERY_LIFETIME),
    );
    Ok(document)
}

/// `GET {issuer}/.well-known/openid-configuration` (Discovery §4.1).
pub fn discovery_request(issuer: &str) -> OutgoingRequest {
    OutgoingRequest::get(format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    ))
}

/// Discovery §4.3: the document's `issuer` must be the one we asked (a trailing slash
/// aside, which configurations get wrong more often than providers do).
pub fn parse_discovery(issuer: &str, body: Value) -> Result<Discovery, UpstreamFailure> {
    let document: Discovery = serde_json::from_value(body).map_err(|_| {
        UpstreamFailure::Malformed("the discovery document lacks required endpoints".into())
    })?;
    if !same_issuer(&document.issuer, issuer) {
        return Err(UpstreamFailure::Malformed(format!(
            "the discovery document names issuer `{}`, not `{issuer}`",
            document.issuer
        )));
    }
    Ok(document)
}

fn same_issuer(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// The user of a token response: the ID token's `sub`, or the userinfo endpoint's.
pub fn identify(
    env: &Env,
    discovery: &Discovery,
    client_id: &str,
    token: &TokenResponse,
    nonce: Option<&str>,
) -> Result<String, UpstreamFailure> {
    if let Some(id_token) = &token.id_token {
        let expected = Expected {
            issuer: &discovery.issuer,
            client_id,
            nonce,
            now: env.now(),
        };
        return subject_of_id_token(id_token, &expected);
    }
    let Some(userinfo) = &discovery.userinfo_endpoint else {
        return Err(UpstreamFailure::Malformed(
            "no id_token and no userinfo endpoint".into(),
        ));
    };
    let request = OutgoingRequest::get(userinfo.clone())
        .with_header("authorization", &format!("Bearer {}", token.access_token));
    send_json(env, &request)?
        .get("sub")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| UpstreamFailure::Malformed("the userinfo answer has no sub".into()))
}

/// What an ID token must say to be ours.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: Option<&'a str>,
    pub now: u64,
}

#[derive(Deserialize)]
struct IdTokenClaims {
    iss: String,
    sub: String,
    aud: Audience,
    exp: f64,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    azp: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, client_id: &str) -> bool {
        match self {
            Audience::One(a) => a == client_id,
            Audience::Many(all) => all.iter().any(|a| a == client_id),
        }
    }
}

/// The `sub` of an ID token after the checks of OpenID Connect Core §3.1.3.7. The token
/// came straight from the token endpoint over TLS, so (item 6) its signature need not be
/// checked; `iss`, `aud`, `azp`, `exp` and `nonce` are.
pub fn subject_of_id_token(id_token: &str, expected: &Expected) -> Result<String, UpstreamFailure> {
    let bad = |why: &str| UpstreamFailure::Malformed(format!("the ID token {why}"));
    let mut parts = id_token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("is not a JWS"));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| bad("payload is not base64url"))?;
    let claims: IdTokenClaims =
        serde_json::from_slice(&bytes).map_err(|_| bad("lacks iss, sub, aud or exp"))?;
    if claims.iss != expected.issuer {
        return Err(bad("was issued by someone else"));
    }
    if !claims.aud.contains(expected.client_id)
        || claims
            .azp
            .as_deref()
            .is_some_and(|azp| azp != expected.client_id)
    {
        return Err(bad("is for another client"));
    }
    if claims.exp <= expected.now as f64 {
        return Err(bad("has expired"));
    }
    if let Some(nonce) = expected.nonce {
        if claims.nonce.as_deref() != Some(nonce) {
            return Err(bad("does not carry our nonce"));
        }
    }
    Ok(claims.sub)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn token(claims: Value) -> String {
        let enc = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
        format!("{}.{}.sig", enc(&json!({"alg": "RS256"})), enc(&claims))
    }

    const EXPECTED: Expected<'static> = Expected {
        issuer: "https://idp.example",
        client_id: "us",
        nonce: Some("n1"),
        now: 1000,
    };

    fn claims() -> Value {
        json!({"iss": "https://idp.example", "sub": "alice", "aud": "us", "exp": 2000, "nonce": "n1"})
    }

    #[test]
    fn a_good_id_token_names_the_user() {
        assert_eq!(
            subject_of_id_token(&token(claims()), &EXPECTED).unwrap(),
            "alice"
        );
        let mut c = claims();
        c["aud"] = json!(["other", "us"]);
        assert_eq!(subject_of_id_token(&token(c), &EXPECTED).unwrap(), "alice");
    }

    #[test]
    fn each_check_refuses() {
        for (field, value) in [
            ("iss", json!("https://evil.example")),
            ("aud", json!("other")),
            ("azp", json!("other")),
            ("exp", json!(1000)),
            ("nonce", json!("n2")),
            ("nonce", Value::Null),
            ("sub", Value::Null),
        ] {
            let mut c = claims();
            c[field] = value;
            assert!(
                subject_of_id_token(&token(c), &EXPECTED).is_err(),
                "{field} accepted"
            );
        }
        assert!(subject_of_id_token("a.b", &EXPECTED).is_err());
    }

    #[test]
    fn discovery_must_name_the_configured_issuer() {
        let doc = json!({
            "issuer": "https://idp.example/",
            "authorization_endpoint": "https://idp.example/auth",
            "token_endpoint": "https://idp.example/token"
        });
        assert!(parse_discovery("https://idp.example", doc.clone()).is_ok());
        assert!(parse_discovery("https://other.example", doc).is_err());
        assert!(parse_discovery(
            "https://idp.example",
            json!({"issuer": "https://idp.example"})
        )
        .is_err());
    }
}
