//! Console sessions: a signed-in browser holds an opaque cookie instead of its token.
//!
//! The cookie is HttpOnly (scripts cannot read it) and `SameSite=Strict` (other sites
//! cannot send it). On top of that, every state-changing request made with a session
//! must carry the session's CSRF token in the `X-CSRF-Token` header (forms in the
//! console's script) or a `_csrf` form field (sign out), which a page on another origin
//! cannot read. Sessions live in memory: a restart signs everyone out, and a session
//! holds only its token's hash, so revoking the token ends the session at once.

use crate::api::auth::{Caller, Tokens};
use crate::api::error::ApiError;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The session cookie's name.
pub const COOKIE: &str = "baton_session";
/// The header that carries the CSRF token on API requests made with a session.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts from sign-in.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; signing in past it drops expired ones, then the oldest.
const MAX_SESSIONS: usize = 10_000;
/// Sessions one token may hold; its next sign-in ends its oldest. This keeps one token
/// holder from filling the table and pushing everyone else out.
const MAX_PER_TOKEN: usize = 16;

/// The open console sessions (shared by clones).
#[derive(Default, Clone)]
pub struct Sessions {
    open: Arc<Mutex<HashMap<String, Session>>>,
}

struct Session {
    token_hash: String,
    csrf: String,
    expires: Instant,
}

/// A request's signed-in user, and the CSRF token their pages embed.
#[derive(Clone, Debug)]
pub struct SignedIn {
    /// Who the session's token belongs to.
    pub caller: Caller,
    /// What every state-changing request of this session must carry.
    pub csrf: String,
}

impl Sessions {
    /// Opens a session for the holder of `token`; returns the `Set-Cookie` value, or
    /// `None` if the token is unknown or revoked.
    pub fn sign_in(&self, tokens: &Tokens, token: &str) -> Result<Option<HeaderValue>, ApiError> {
        let hash = Tokens::hash(token.trim());
        if tokens
            .by_hash(&hash)
            .map_err(|e| ApiError::internal(e.to_string()))?
            .is_none()
        {
            return Ok(None);
        }
        let id = crate::secret::random("");
        let mut open = self.open.lock().expect("sessions lock");
        let now = Instant::now();
        if open.len() >= MAX_SESSIONS {
            open.retain(|_, s| s.expires > now);
        }
        let mine = open.values().filter(|s| s.token_hash == hash).count();
        let full = open.len() >= MAX_SESSIONS;
        if mine >= MAX_PER_TOKEN || full {
            // The token's own oldest session makes room; only an unlikely table full of
            // distinct tokens ends someone else's.
            let oldest = open
                .iter()
                .filter(|(_, s)| full || (mine >= MAX_PER_TOKEN && s.token_hash == hash))
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                open.remove(&oldest);
            }
        }
        open.insert(
            id.clone(),
            Session {
                token_hash: hash,
                csrf: crate::secret::random(""),
                expires: Instant::now() + LIFETIME,
            },
        );
        let cookie = format!(
            "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
            LIFETIME.as_secs()
        );
        Ok(Some(HeaderValue::from_str(&cookie).expect("ASCII cookie")))
    }

    /// Ends the request's session, if it has one; returns the `Set-Cookie` value that
    /// clears the cookie.
    pub fn sign_out(&self, headers: &HeaderMap) -> HeaderValue {
        if let Some(id) = session_id(headers) {
            self.open.lock().expect("sessions lock").remove(id);
        }
        HeaderValue::from_static("baton_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
    }

    /// The signed-in user of a request with a live session cookie whose token is still
    /// valid; `None` without one.
    pub fn signed_in(
        &self,
        tokens: &Tokens,
        headers: &HeaderMap,
    ) -> Result<Option<SignedIn>, ApiError> {
        let Some(id) = session_id(headers) else {
            return Ok(None);
        };
        let (hash, csrf) = {
            let mut open = self.open.lock().expect("sessions lock");
            match open.get(id) {
                Some(s) if s.expires > Instant::now() => (s.token_hash.clone(), s.csrf.clone()),
                Some(_) => {
                    open.remove(id);
                    return Ok(None);
                }
                None => return Ok(None),
            }
        };
        let caller = tokens
            .by_hash(&hash)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        if caller.is_none() {
            // The token was revoked: the session is over for good.
            self.open.lock().expect("sessions lock").remove(id);
        }
        Ok(caller.map(|caller| SignedIn { caller, csrf }))
    }

    /// The caller behind a request's session, for the JSON API: a state-changing
    /// request must carry the session's CSRF token in [`CSRF_HEADER`].
    pub fn api_caller(
        &self,
        tokens: &Tokens,
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<Option<Caller>, ApiError> {
        let Some(signed) = self.signed_in(tokens, headers)? else {
            return Ok(None);
        };
        if !method.is_safe() {
            let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            check_csrf(&signed, sent)?;
        }
        Ok(Some(signed.caller))
    }
}

/// `Ok` if `sent` is the session's CSRF token.
pub fn check_csrf(signed: &SignedIn, sent: Option<&str>) -> Result<(), ApiError> {
    match sent {
        Some(sent) if constant_time_eq(sent.as_bytes(), signed.csrf.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::forbidden(
            "the CSRF token does not match this session; reload the page and try again",
        )
        .field(CSRF_HEADER)),
        None => Err(ApiError::forbidden(format!(
            "a request made with a console session must carry the `{CSRF_HEADER}` header"
        ))
        .field(CSRF_HEADER)),
    }
}

/// Whether a request carries a session cookie at all (signed in or not).
pub fn has_cookie(headers: &HeaderMap) -> bool {
    session_id(headers).is_some()
}

/// The request's session id. Two session cookies mean someone planted one (from a
/// sibling domain, say) to have the browser act in their session: none counts then.
fn session_id(headers: &HeaderMap) -> Option<&str> {
    let mut ids = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value);
    match (ids.next(), ids.next()) {
        (Some(id), None) if !id.is_empty() => Some(id),
        _ => None,
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::auth::Role;

    fn tokens() -> (tempfile::TempDir, Tokens) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("baton.redb")).unwrap();
        (dir, Tokens::new(store))
    }

    fn with_cookie(set_cookie: &HeaderValue) -> HeaderMap {
        let pair = set_cookie.to_str().unwrap().split(';').next().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(pair).unwrap());
        headers
    }

    #[test]
    fn a_session_follows_its_token_and_guards_writes_with_csrf() {
        let (_dir, tokens) = tokens();
        let sessions = Sessions::default();
        let (token, record) = tokens.create("ana", Role::Operator).unwrap();
        assert!(sessions.sign_in(&tokens, "bt_nope").unwrap().is_none());
        let cookie = sessions.sign_in(&tokens, &token).unwrap().unwrap();
        let text = cookie.to_str().unwrap();
        assert!(
            text.contains("HttpOnly") && text.contains("SameSite=Strict"),
            "{text}"
        );

        let mut headers = with_cookie(&cookie);
        let signed = sessions.signed_in(&tokens, &headers).unwrap().unwrap();
        assert_eq!(signed.caller.user, "ana");
        // Reads need no CSRF token; writes need the right one.
        assert!(
            sessions
                .api_caller(&tokens, &Method::GET, &headers)
                .unwrap()
                .is_some()
        );
        let refused = sessions
            .api_caller(&tokens, &Method::POST, &headers)
            .unwrap_err();
        assert_eq!(refused.status, axum::http::StatusCode::FORBIDDEN);
        headers.insert(CSRF_HEADER, HeaderValue::from_static("wrong"));
        assert!(
            sessions
                .api_caller(&tokens, &Method::POST, &headers)
                .is_err()
        );
        headers.insert(CSRF_HEADER, HeaderValue::from_str(&signed.csrf).unwrap());
        assert!(
            sessions
                .api_caller(&tokens, &Method::POST, &headers)
                .unwrap()
                .is_some()
        );

        // Revoking the token ends the session.
        tokens.create("root", Role::Admin).unwrap();
        tokens.revoke(&record.id).unwrap();
        assert!(sessions.signed_in(&tokens, &headers).unwrap().is_none());
    }

    #[test]
    fn one_token_cannot_crowd_out_the_others() {
        let (_dir, tokens) = tokens();
        let sessions = Sessions::default();
        let (ana, _) = tokens.create("ana", Role::Viewer).unwrap();
        let (bob, _) = tokens.create("bob", Role::Viewer).unwrap();
        let bobs = with_cookie(&sessions.sign_in(&tokens, &bob).unwrap().unwrap());
        let first = with_cookie(&sessions.sign_in(&tokens, &ana).unwrap().unwrap());
        for _ in 0..MAX_PER_TOKEN {
            sessions.sign_in(&tokens, &ana).unwrap().unwrap();
        }
        assert!(
            sessions.signed_in(&tokens, &first).unwrap().is_none(),
            "ana's oldest ended"
        );
        assert!(
            sessions.signed_in(&tokens, &bobs).unwrap().is_some(),
            "bob's lives on"
        );
        assert_eq!(sessions.open.lock().unwrap().len(), MAX_PER_TOKEN + 1);
    }

    #[test]
    fn a_second_session_cookie_signs_the_request_out() {
        let (_dir, tokens) = tokens();
        let sessions = Sessions::default();
        let (token, _) = tokens.create("ana", Role::Viewer).unwrap();
        let mut headers = with_cookie(&sessions.sign_in(&tokens, &token).unwrap().unwrap());
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("baton_session=planted"),
        );
        assert!(sessions.signed_in(&tokens, &headers).unwrap().is_none());
    }

    #[test]
    fn signing_out_forgets_the_session() {
        let (_dir, tokens) = tokens();
        let sessions = Sessions::default();
        let (token, _) = tokens.create("ana", Role::Viewer).unwrap();
        let headers = with_cookie(&sessions.sign_in(&tokens, &token).unwrap().unwrap());
        let cleared = sessions.sign_out(&headers);
        assert!(cleared.to_str().unwrap().contains("Max-Age=0"));
        assert!(sessions.signed_in(&tokens, &headers).unwrap().is_none());
    }
}
