//! Audit events: one JSON object per event, written by the caller as one line on stderr
//! (Spin and our host both collect guest stderr). Never holds a secret: only identifiers.

use serde::Serialize;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    ClientRegistered,
    ClientUpdated,
    ClientDeleted,
    SignIn,
    SignInRefused,
    /// The upstream provider failed a sign-in (the reason holds what it did).
    UpstreamFailed,
    TokenIssued,
    RefreshReuse,
    CodeReplay,
    TokenRevoked,
    DeviceApproved,
    DeviceDenied,
    /// A resource server got the user's upstream token (RFC 8693); `client_id` is the
    /// resource server's credential, `reason` the upstream.
    TokenExchanged,
    /// A resource server's authenticated token exchange was refused (the reason says why).
    TokenExchangeRefused,
}

/// One audit event. Fields that do not apply stay out of the line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    pub event: AuditKind,
    /// Seconds since the epoch.
    pub time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The signed-in user (upstream identity).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

impl AuditEvent {
    pub fn new(event: AuditKind, time: u64) -> AuditEvent {
        AuditEvent {
            event,
            time,
            client_id: None,
            sub: None,
            grant_type: None,
            reason: None,
            ip: None,
        }
    }

    pub fn client(mut self, client_id: &str) -> AuditEvent {
        self.client_id = Some(client_id.to_string());
        self
    }

    /// Named after the JWT claim, not `std::ops::Sub`.
    #[allow(clippy::should_implement_trait)]
    pub fn sub(mut self, sub: &str) -> AuditEvent {
        self.sub = Some(sub.to_string());
        self
    }

    pub fn grant_type(mut self, grant_type: &str) -> AuditEvent {
        self.grant_type = Some(grant_type.to_string());
        self
    }

    pub fn reason(mut self, reason: &str) -> AuditEvent {
        self.reason = Some(reason.to_string());
        self
    }

    pub fn ip(mut self, ip: Option<&str>) -> AuditEvent {
        self.ip = ip.map(str::to_string);
        self
    }

    /// The line to write: `{"audit":"mcp-auth",...}` on one line.
    pub fn to_line(&self) -> String {
        #[derive(Serialize)]
        struct Line<'a> {
            audit: &'static str,
            #[serde(flatten)]
            event: &'a AuditEvent,
        }
        serde_json::to_string(&Line {
            audit: "mcp-auth",
            event: self,
        })
        .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_without_empty_fields() {
        let line = AuditEvent::new(AuditKind::TokenIssued, 7)
            .client("c1")
            .sub("alice")
            .grant_type("authorization_code")
            .to_line();
        assert_eq!(
            line,
            r#"{"audit":"mcp-auth","event":"token_issued","time":7,"client_id":"c1","sub":"alice","grant_type":"authorization_code"}"#
        );
    }
}
