//! Access and refresh tokens: minting, lookup by hash, refresh rotation, token families.
//!
//! - **Access tokens** are JWTs (RFC 9068) signed with [`keys::signing_key`]. Each also gets
//!   a record `access/<sha256(token)>` expiring with it, so introspection and `/verify` cost
//!   one hash and one `get` instead of a signature check per request (3–6× slower in wasm).
//!   Revoking an access token deletes its record.
//! - **Refresh tokens** are opaque 256-bit secrets under `refresh/<sha256(token)>`, rotated on
//!   every use (OAuth 2.1 §4.3.1) with [`records::claim`].
//! - **Families**: every token descending from one authorization (a code, a device grant, a
//!   client-credentials request) shares a family id. The record `family/<id>` lives as long
//!   as its longest-lived member and carries two counters: `#slots` numbers the members, each
//!   listed under `family/<id>/<i>` (the member's record key, expiring with it), and
//!   `#revoke`, which marks the family revoked. Revoking sets the mark, then deletes every
//!   listed member; issuing lists a member before writing it and reads the mark afterwards, so
//!   whichever runs second sees the other and no member outlives a revocation. Introspection
//!   therefore stays at one `get`: a revoked token simply has no record.
//!
//! Rotation and the grace window (MCP pitfall 8): the child of a refresh token is derived
//! from the parent's plaintext and a random salt kept in the parent's record, so a client
//! that retries the immediately previous refresh token less than `refresh_grace_period`
//! seconds after its rotation gets the same child again (and a fresh access token) without
//! branching the family. The salt keeps an old, leaked token from revealing its descendants.
//! After the window, or once the child itself has been used, presenting the parent is reuse:
//! the family is revoked. A period of 0 is strict rotation (RFC 9700 §4.14.2): any second
//! use is reuse, even within the same second.
//!
//! - **Deleted clients** (RFC 7592 §2.3): deleting a client writes a tombstone,
//!   `deleted-client/<client_id>`, that lives as long as any token issued to the client can.
//!   Every lookup of a live access or refresh token checks it: one more `get` per
//!   introspection or `/verify` of a live token (none for an unknown one), instead of a
//!   deletion that would have to find every token of the client.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::{Audiences, Duration, JWTClaims};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::audit::{AuditEvent, AuditKind};
use crate::env::{Env, StoreError};
use crate::error::OAuthError;
use crate::keys;
use crate::records::{self, Claim};
use crate::secret::{hash, Secret};

/// What tokens are issued for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub client_id: String,
    /// The upstream user; the `client_id` for client credentials.
    pub sub: String,
    /// Space-separated scopes of the access token.
    pub scope: String,
    /// The normalised resource: the token's `aud`.
    pub resource: String,
    pub auth_time: Option<u64>,
    pub family: String,
    /// The user's display name (see [`crate::upstream::Identity`]); `None` for client
    /// credentials and for providers whose `sub` is the name.
    pub username: Option<String>,
}

/// Whether an issuance includes a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    None,
    /// A new refresh token (starting a family's chain).
    New,
    /// A child from [`rotate`].
    Child(Box<Rotated>),
}

/// A refresh token's child, as [`rotate`] hands it to [`issue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    token: String,
    /// The child's record, when this request is to store it (not when a retry finds it
    /// stored already).
    record: Option<RefreshRecord>,
    /// The parent's record key.
    parent: String,
}

/// The tokens of one successful token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub access_token: String,
    pub expires_in: u64,
    pub scope: String,
    pub refresh_token: Option<String>,
}

/// An access token's record, under `access/<sha256(token)>`, expiring at `exp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRecord {
    pub client_id: String,
    pub sub: String,
    pub aud: String,
    pub scope: String,
    pub iat: u64,
    pub exp: u64,
    pub jti: String,
    pub family: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// A refresh token's record, under `refresh/<sha256(token)>`, expiring at `exp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRecord {
    pub client_id: String,
    pub sub: String,
    /// The scope of the original grant; a refresh may narrow the access token's scope but
    /// the child keeps this one (RFC 6749 §6).
    pub scope: String,
    pub resource: String,
    pub family: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub iat: u64,
    pub exp: u64,
    /// Random, base64url: mixed into the child's derivation.
    salt: String,
    /// When this token was rotated; `None` while it is current (or while its rotation is
    /// being written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_at: Option<u64>,
}

/// The custom claims of our access tokens (RFC 9068 §2.2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub client_id: String,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
    /// The user's display name (OpenID Connect Core §5.1), never an identifier: `sub` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
}

pub fn access_key(token: &str) -> String {
    format!("access/{}", hash(token))
}

pub fn refresh_key(token: &str) -> String {
    format!("refresh/{}", hash(token))
}

pub fn family_key(family: &str) -> String {
    format!("family/{family}")
}

/// A fresh family id, for grants that have no secret of their own to name it by.
pub fn new_family(env: &Env) -> String {
    Secret::generate(env).hash()
}

/// Issue an access token (and a refresh token as `refresh` says) for `grant`.
///
/// If the family is revoked while this runs (a code replay or refresh reuse racing it, or a
/// revocation that ended before a rotation began), the response still goes out but nothing it
/// names stays valid, the rotated parent included: exactly as if the revocation had come a
/// moment later.
///
/// Store round trips: the slots of every member in one `increment`, every record in one batch
/// (with the sweep index), then the revocation mark: the mark is read only after the members
/// are listed, which is what makes a racing revocation find them or be found.
pub fn issue(env: &Env, grant: &Grant, refresh: Refresh) -> Result<Issued, OAuthError> {
    // Before any write: a stored key's read would otherwise send the writes early.
    let signing_key = keys::signing_key(env)?;
    keep_family(env, &grant.family)?;
    let (refresh_token, to_store, parent) = match refresh {
        Refresh::None => (None, None, None),
        Refresh::New => {
            let token = Secret::generate(env).expose().to_string();
            (Some(token), Some(new_refresh_record(env, grant)), None)
        }
        Refresh::Child(child) => {
            let Rotated {
                token,
                record,
                parent,
            } = *child;
            (Some(token), record, Some(parent))
        }
    };
    let members = if to_store.is_some() { 2 } else { 1 };
    let slots = records::take_slots(env, &family_key(&grant.family), members)?;
    if let (Some(token), Some(record)) = (&refresh_token, &to_store) {
        let (family, key) = (&grant.family, refresh_key(token));
        put_member(env, family, *slots.start(), &key, record, record.exp)?;
    }
    let access_token = mint_access(env, grant, &signing_key, *slots.end())?;
    if is_revoked(env, &grant.family)? {
        records::delete(env, &access_key(&access_token))?;
        if let Some(token) = &refresh_token {
            records::delete(env, &refresh_key(token))?;
        }
        if let Some(parent) = &parent {
            records::delete(env, parent)?;
        }
    }
    Ok(Issued {
        access_token,
        expires_in: env.settings.access_token_lifetime,
        scope: grant.scope.clone(),
        refresh_token,
    })
}

/// Rotate refresh token `presented` (whose live record is `record`): the child token, its
/// grant bounded to `scope` (the record's, or less when the client's registered scope has
/// narrowed since), for [`issue`] to store, or `invalid_grant` after revoking the family when
/// this is reuse.
///
/// The family's revocation mark is not read first: a revoked family's members are deleted,
/// so its tokens are normally unknown here, and a member that outlives a revocation (one in
/// progress, or one whose revoker failed half-way) is caught by [`issue`], which reads the
/// mark after listing the child and deletes what it issued and the parent. One round trip
/// fewer per refresh; nothing issued into a revoked family stays valid either way.
pub fn rotate(
    env: &Env,
    presented: &str,
    record: &RefreshRecord,
    scope: &str,
) -> Result<Rotated, OAuthError> {
    let revoked = || OAuthError::invalid_grant("the refresh token has been revoked");
    let key = refresh_key(presented);
    let child = child_of(presented, &record.salt);
    let now = env.now();
    // Every request that may hand out `child` stores the same record for it (its salt derived
    // from the parent's): a winner that dies between its claim and this write leaves the
    // retries to store it.
    let child_record = RefreshRecord {
        iat: now,
        exp: now + env.settings.refresh_token_lifetime,
        salt: child_of(&record.salt, "mcp-auth/child-salt"),
        rotated_at: None,
        scope: scope.to_string(),
        ..record.clone()
    };
    if records::claim(env, &key, Claim::Redeem)? {
        mark_rotated(env, &key, record, now)?;
        return Ok(Rotated {
            token: child,
            record: Some(child_record),
            parent: key,
        });
    }
    // Rotated before: a retry of the immediately previous token, or reuse.
    let Some(current) = records::get::<RefreshRecord>(env, &key)? else {
        return Err(revoked());
    };
    let rotated_at = match current.rotated_at {
        Some(at) => at,
        None => {
            // The winner has not recorded its rotation yet: this retry counts as within the
            // window, and its time starts the window should the winner never record one.
            mark_rotated(env, &key, &current, now)?;
            now
        }
    };
    let child_used = records::claims(env, &refresh_key(&child), Claim::Redeem)? > 0;
    // Strictly within: a period of 0 has no second in which a retry is not reuse.
    if now < rotated_at + env.settings.refresh_grace_period && !child_used {
        let stored = find_refresh(env, &child)?.is_some();
        return Ok(Rotated {
            token: child,
            record: (!stored).then_some(child_record),
            parent: key,
        });
    }
    revoke_family(env, &record.family)?;
    env.audit(
        AuditEvent::new(AuditKind::RefreshReuse, now)
            .client(&record.client_id)
            .sub(&record.sub),
    );
    Err(OAuthError::invalid_grant(
        "the refresh token was already used; every token of its grant is revoked",
    ))
}

/// The live record of access token `token` (one `get`, and one for the client's tombstone
/// when there is a record).
pub fn find_access(env: &Env, token: &str) -> Result<Option<AccessRecord>, StoreError> {
    let record = records::get::<AccessRecord>(env, &access_key(token))?;
    not_retired(env, record, |r| &r.client_id)
}

/// The live record of refresh token `token`, rotated or not.
pub fn find_refresh(env: &Env, token: &str) -> Result<Option<RefreshRecord>, StoreError> {
    let record = records::get::<RefreshRecord>(env, &refresh_key(token))?;
    not_retired(env, record, |r| &r.client_id)
}

/// Retire every token of a deleted client at once: from now on [`find_access`] and
/// [`find_refresh`] find none. The tombstone lives as long as the longest-lived token issued
/// to the client could, counting one that a request in flight issues just after the deletion.
pub fn retire_client(env: &Env, client_id: &str) -> Result<(), StoreError> {
    let s = &env.settings;
    let longest = s.access_token_lifetime.max(s.refresh_token_lifetime);
    let until = env.now() + longest + IN_FLIGHT;
    crate::upstream_tokens::forget_client(env, client_id)?;
    records::put(env, &tombstone_key(client_id), &(), Some(until))
}

/// Longest a token request can take, seconds: one that authenticated its client just before
/// the client's deletion may issue tokens just after it.
const IN_FLIGHT: u64 = 300;

pub fn tombstone_key(client_id: &str) -> String {
    format!("deleted-client/{client_id}")
}

/// `record`, unless its client has been deleted.
fn not_retired<T>(
    env: &Env,
    record: Option<T>,
    client_id: fn(&T) -> &String,
) -> Result<Option<T>, StoreError> {
    let Some(record) = record else {
        return Ok(None);
    };
    let retired = records::get::<()>(env, &tombstone_key(client_id(&record)))?.is_some();
    Ok((!retired).then_some(record))
}

/// The record of refresh token `token` if it is still the current one of its chain.
pub fn find_current_refresh(env: &Env, token: &str) -> Result<Option<RefreshRecord>, StoreError> {
    let Some(record) = find_refresh(env, token)? else {
        return Ok(None);
    };
    Ok((records::claims(env, &refresh_key(token), Claim::Redeem)? == 0).then_some(record))
}

/// Whose token a stored record is: what an operator revokes by (`mcp-auth admin tokens
/// revoke --user/--client`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub client_id: String,
    pub sub: String,
    pub username: Option<String>,
    pub family: String,
}

/// Does store key `key` name an access or refresh token's record (not one of its counters)?
pub fn is_token_key(key: &str) -> bool {
    (key.starts_with("access/") || key.starts_with("refresh/")) && !key.contains('#')
}

/// The holder of the live token whose record is under `key` (see [`is_token_key`]); `None`
/// when it has expired, was revoked, or its client was deleted.
pub fn holder(env: &Env, key: &str) -> Result<Option<Holder>, StoreError> {
    if key.starts_with("access/") {
        let record = records::get::<AccessRecord>(env, key)?;
        return Ok(not_retired(env, record, |r| &r.client_id)?.map(|r| Holder {
            client_id: r.client_id,
            sub: r.sub,
            username: r.username,
            family: r.family,
        }));
    }
    let record = records::get::<RefreshRecord>(env, key)?;
    Ok(not_retired(env, record, |r| &r.client_id)?.map(|r| Holder {
        client_id: r.client_id,
        sub: r.sub,
        username: r.username,
        family: r.family,
    }))
}

/// Revoke one access token.
pub fn revoke_access(env: &Env, token: &str) -> Result<(), StoreError> {
    records::delete(env, &access_key(token))
}

/// Revoke every token of `family`, now and as it is being issued.
///
/// Cost: one `get` per member ever listed (two per refresh), on this rare path only.
pub fn revoke_family(env: &Env, family: &str) -> Result<(), StoreError> {
    let key = family_key(family);
    if records::get::<()>(env, &key)?.is_none() {
        // Give the revocation mark a record to be swept with.
        keep_family(env, family)?;
    }
    records::claim(env, &key, Claim::Revoke)?;
    for slot in 1..=records::slot_count(env, &key)? {
        if let Some(member) = records::get::<String>(env, &member_slot_key(family, slot))? {
            records::delete(env, &member)?;
        }
    }
    crate::upstream_tokens::forget(env, family)
}

fn is_revoked(env: &Env, family: &str) -> Result<bool, StoreError> {
    Ok(records::claims(env, &family_key(family), Claim::Revoke)? > 0)
}

/// (Re)write the family record so that it outlives every member issued now.
fn keep_family(env: &Env, family: &str) -> Result<(), StoreError> {
    let s = &env.settings;
    let expires_at = env.now() + s.access_token_lifetime.max(s.refresh_token_lifetime);
    records::put(env, &family_key(family), &(), Some(expires_at))
}

fn member_slot_key(family: &str, slot: i64) -> String {
    format!("family/{family}/{slot}")
}

/// List `member_key` in `family` at `slot` (taken with [`records::take_slots`]), then write
/// the member's record.
fn put_member<T: Serialize>(
    env: &Env,
    family: &str,
    slot: i64,
    member_key: &str,
    record: &T,
    expires_at: u64,
) -> Result<(), StoreError> {
    records::put(
        env,
        &member_slot_key(family, slot),
        &member_key,
        Some(expires_at),
    )?;
    records::put(env, member_key, record, Some(expires_at))
}

fn mint_access(
    env: &Env,
    grant: &Grant,
    key: &keys::SigningKey,
    slot: i64,
) -> Result<String, OAuthError> {
    let now = env.now();
    let exp = now + env.settings.access_token_lifetime;
    let jti = URL_SAFE_NO_PAD.encode(env.random_bytes::<16>());
    let claims = JWTClaims {
        issued_at: Some(Duration::from_secs(now)),
        expires_at: Some(Duration::from_secs(exp)),
        invalid_before: None,
        issuer: Some(env.settings.issuer.clone()),
        subject: Some(grant.sub.clone()),
        audiences: Some(Audiences::AsString(grant.resource.clone())),
        jwt_id: Some(jti.clone()),
        nonce: None,
        custom: AccessClaims {
            client_id: grant.client_id.clone(),
            scope: grant.scope.clone(),
            auth_time: grant.auth_time,
            preferred_username: grant.username.clone(),
        },
    };
    let token = key.sign_access_token(claims)?;
    let record = AccessRecord {
        client_id: grant.client_id.clone(),
        sub: grant.sub.clone(),
        aud: grant.resource.clone(),
        scope: grant.scope.clone(),
        iat: now,
        exp,
        jti,
        family: grant.family.clone(),
        username: grant.username.clone(),
    };
    put_member(env, &grant.family, slot, &access_key(&token), &record, exp)?;
    Ok(token)
}

fn new_refresh_record(env: &Env, grant: &Grant) -> RefreshRecord {
    let now = env.now();
    RefreshRecord {
        client_id: grant.client_id.clone(),
        sub: grant.sub.clone(),
        scope: grant.scope.clone(),
        resource: grant.resource.clone(),
        family: grant.family.clone(),
        auth_time: grant.auth_time,
        username: grant.username.clone(),
        iat: now,
        exp: now + env.settings.refresh_token_lifetime,
        salt: new_salt(env),
        rotated_at: None,
    }
}

/// Record when `record` (under `key`) was rotated. Its expiry stays, so that a late reuse is
/// still recognised as reuse.
fn mark_rotated(env: &Env, key: &str, record: &RefreshRecord, now: u64) -> Result<(), StoreError> {
    let rotated = RefreshRecord {
        rotated_at: Some(now),
        ..record.clone()
    };
    records::update(env, key, &rotated, Some(record.exp))
}

fn new_salt(env: &Env) -> String {
    URL_SAFE_NO_PAD.encode(env.random_bytes::<16>())
}

/// `base64url(SHA-256("mcp-auth/rotate" || salt || parent))`: the same child for every
/// retry of one parent.
fn child_of(parent: &str, salt: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(b"mcp-auth/rotate");
    digest.update(salt.as_bytes());
    digest.update(parent.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Harness;

    fn grant(family: &str) -> Grant {
        Grant {
            client_id: "c1".into(),
            sub: "alice".into(),
            scope: "mcp:read".into(),
            resource: "http://localhost:8001/mcp".into(),
            auth_time: Some(1),
            family: family.into(),
            username: None,
        }
    }

    #[test]
    fn children_are_deterministic_per_parent_and_salt() {
        assert_eq!(child_of("p", "s"), child_of("p", "s"));
        assert_ne!(child_of("p", "s"), child_of("p", "t"));
        assert_ne!(child_of("p", "s"), child_of("q", "s"));
        assert_eq!(child_of("p", "s").len(), 43);
    }

    #[test]
    fn revoking_a_family_deletes_every_member() {
        let h = Harness::new();
        let env = h.env();
        let a = issue(&env, &grant("f1"), Refresh::New).unwrap();
        let b = issue(&env, &grant("f2"), Refresh::New).unwrap();
        revoke_family(&env, "f1").unwrap();
        assert!(find_access(&env, &a.access_token).unwrap().is_none());
        assert!(find_refresh(&env, a.refresh_token.as_deref().unwrap())
            .unwrap()
            .is_none());
        assert!(find_access(&env, &b.access_token).unwrap().is_some());
    }

    #[test]
    fn tokens_issued_into_a_revoked_family_are_dead_on_arrival() {
        let h = Harness::new();
        let env = h.env();
        revoke_family(&env, "f1").unwrap();
        let a = issue(&env, &grant("f1"), Refresh::New).unwrap();
        assert!(find_access(&env, &a.access_token).unwrap().is_none());
        assert!(find_refresh(&env, a.refresh_token.as_deref().unwrap())
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_family_and_its_index_are_swept_after_expiry() {
        let h = Harness::new();
        let env = h.env();
        records::sweep_some(&env).unwrap(); // a running server has swept before
        let a = issue(&env, &grant("f1"), Refresh::New).unwrap();
        let refresh = a.refresh_token.unwrap();
        let record = find_refresh(&env, &refresh).unwrap().unwrap();
        rotate(&env, &refresh, &record, &record.scope).unwrap();
        h.clock.advance(env.settings.refresh_token_lifetime + 120);
        drop(env); // the request ends: its records join the sweep index
        let env = h.env();
        while records::sweep_some(&env).unwrap() > 0 {}
        drop(env); // the request ends: its deletes go out
        let left: Vec<String> = h
            .store
            .keys()
            .into_iter()
            .filter(|k| !k.starts_with("keys/") && k != "sweep/cursor")
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}
