//! Bearer tokens: who a request comes from and what their role lets them do.
//!
//! A token is 32 random bytes shown once, at creation; the store keeps only its sha256,
//! so a copy of the database grants nothing.

use super::error::ApiError;
use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, RwLock};

/// What a token's holder may do. Each role includes the ones listed after it, except
/// that `trigger` may start runs but not steer them and `viewer` may only read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything: plugins, workflows, tokens, and all an operator does.
    Admin,
    /// Steer runs, work tasks and exceptions, send events; read everything.
    Operator,
    /// Read everything.
    Viewer,
    /// Client systems: start runs and send events; read runs.
    Trigger,
}

/// The kinds of request a role is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    /// Start runs, send external events.
    Trigger,
    /// Steer runs, decide tasks and exceptions.
    Operate,
    /// Install plugins, apply workflows, manage tokens.
    Administer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Operator, Role::Viewer, Role::Trigger];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
            Role::Trigger => "trigger",
        }
    }

    /// Whether this role may make requests of kind `access`.
    pub fn allows(self, access: Access) -> bool {
        match self {
            Role::Admin => true,
            Role::Operator => access != Access::Administer,
            Role::Viewer => access == Access::Read,
            Role::Trigger => matches!(access, Access::Read | Access::Trigger),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a role (admin, operator, viewer, trigger)"))
    }
}

/// A token as stored: everything but the token.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TokenRecord {
    /// A short public name for the token (the start of its hash), for listing and revoking.
    pub id: String,
    pub user: String,
    pub role: Role,
    pub created_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_ms: Option<u64>,
}

/// The authenticated sender of a request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user: String,
    pub role: Role,
}

impl Caller {
    /// `Ok` if the caller's role allows `access`; a 403 naming the role otherwise.
    pub fn require(&self, access: Access) -> Result<(), ApiError> {
        if self.role.allows(access) {
            return Ok(());
        }
        Err(ApiError::forbidden(format!(
            "user `{}` has role {}, which may not {}",
            self.user,
            self.role,
            match access {
                Access::Read => "read",
                Access::Trigger => "start runs or send events",
                Access::Operate => "steer runs or decide tasks",
                Access::Administer => "install plugins, apply workflows or manage tokens",
            }
        )))
    }

    /// The actor recorded for what this caller does.
    pub fn actor(&self) -> String {
        format!("user:{}", self.user)
    }
}

/// Errors managing tokens.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no token with id {0} (`baton token list` shows them)")]
    Unknown(String),
    #[error("that is the last active admin token; create another admin token before revoking it")]
    LastAdmin,
    #[error(
        "a user name must be 1 to 64 characters of letters, digits, `.`, `_`, `-` or `@`; got `{0}`"
    )]
    BadUser(String),
    #[error("cannot write the admin token to {path}: {source}")]
    WriteFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The token store.
///
/// Valid tokens are remembered in memory by hash, so a request costs no database read.
/// Only a revoke makes a valid token invalid, and it goes through [`Tokens::revoke`],
/// which forgets them all: a running server holds the database's lock, so no other
/// process can revoke behind its back. Unknown hashes are not remembered, so a flood of
/// made-up tokens cannot grow the map.
#[derive(Clone)]
pub struct Tokens {
    store: Store,
    valid: Arc<RwLock<ValidTokens>>,
}

/// The callers of the tokens found valid since the last revoke.
#[derive(Default)]
struct ValidTokens {
    /// Counts revokes: a lookup that read the store before a revoke must not remember
    /// what it read after it.
    revokes: u64,
    callers: HashMap<String, Caller>,
}

/// The file in the data directory that the first start writes the admin token to.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

impl Tokens {
    pub fn new(store: Store) -> Tokens {
        Tokens {
            store,
            valid: Arc::default(),
        }
    }

    /// Creates a token for `user` with `role`; returns the token (shown only now).
    pub fn create(&self, user: &str, role: Role) -> Result<(String, TokenRecord), TokenError> {
        let (token, hash, record) = new_token(user, role)?;
        self.store.put_token(&hash, &record)?;
        Ok((token, record))
    }

    /// On a store with no token at all, creates an admin token and writes it to
    /// `data/admin.token` (mode 0600); returns the file's path. `None` if tokens exist.
    pub fn bootstrap(&self, data: &Path) -> Result<Option<PathBuf>, TokenError> {
        if !self.store.tokens::<TokenRecord>()?.is_empty() {
            return Ok(None);
        }
        let (token, hash, record) = new_token("admin", Role::Admin)?;
        let path = data.join(ADMIN_TOKEN_FILE);
        let fresh = data.join(format!("{ADMIN_TOKEN_FILE}.new"));
        let write_error = |source| TokenError::WriteFile {
            path: path.clone(),
            source,
        };
        // The file before the token: a token stored but never shown would lock everyone
        // out. It takes its final name only once the token is stored.
        write_private(&fresh, &format!("{token}\n")).map_err(write_error)?;
        if !self.store.put_first_token(&hash, &record)? {
            // Another process made the first token meanwhile; this one is not valid.
            let _ = std::fs::remove_file(&fresh);
            return Ok(None);
        }
        std::fs::rename(&fresh, &path).map_err(write_error)?;
        Ok(Some(path))
    }

    /// Every token, revoked ones included, oldest first.
    pub fn list(&self) -> Result<Vec<TokenRecord>, TokenError> {
        let mut records: Vec<TokenRecord> = self
            .store
            .tokens::<TokenRecord>()?
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        records.sort_by_key(|r| r.created_ms);
        Ok(records)
    }

    /// Revokes the token with `id`; revoking twice is not an error. The last active
    /// admin token cannot be revoked: nobody could manage tokens after it.
    pub fn revoke(&self, id: &str) -> Result<TokenRecord, TokenError> {
        let all = self.store.tokens::<TokenRecord>()?;
        let active_admins = all
            .iter()
            .filter(|(_, r)| r.role == Role::Admin && r.revoked_ms.is_none())
            .count();
        let (hash, mut record) = all
            .into_iter()
            .find(|(_, r)| r.id == id)
            .ok_or_else(|| TokenError::Unknown(id.to_owned()))?;
        if record.role == Role::Admin && record.revoked_ms.is_none() && active_admins == 1 {
            return Err(TokenError::LastAdmin);
        }
        if record.revoked_ms.is_none() {
            record.revoked_ms = Some(crate::engine::duration::now_ms());
            self.store.put_token(&hash, &record)?;
            let mut valid = self.valid.write().expect("token cache lock");
            valid.revokes += 1;
            valid.callers.clear();
        }
        Ok(record)
    }

    /// How the store keys a token.
    pub fn hash(token: &str) -> String {
        hash_token(token)
    }

    /// The caller a bearer token belongs to, if it is valid and not revoked.
    pub fn authenticate(&self, token: &str) -> Result<Option<Caller>, TokenError> {
        self.by_hash(&hash_token(token))
    }

    /// The caller whose token has this [`Tokens::hash`], if it is not revoked: console
    /// sessions keep the hash, never the token.
    pub fn by_hash(&self, hash: &str) -> Result<Option<Caller>, TokenError> {
        let revokes = {
            let valid = self.valid.read().expect("token cache lock");
            if let Some(caller) = valid.callers.get(hash) {
                return Ok(Some(caller.clone()));
            }
            valid.revokes
        };
        let record: Option<TokenRecord> = self.store.token(hash)?;
        let caller = record.filter(|r| r.revoked_ms.is_none()).map(|r| Caller {
            user: r.user,
            role: r.role,
        });
        if let Some(caller) = &caller {
            let mut valid = self.valid.write().expect("token cache lock");
            if valid.revokes == revokes {
                valid.callers.insert(hash.to_owned(), caller.clone());
            }
        }
        Ok(caller)
    }
}

fn new_token(user: &str, role: Role) -> Result<(String, String, TokenRecord), TokenError> {
    let valid = !user.is_empty()
        && user.len() <= 64
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if !valid {
        return Err(TokenError::BadUser(user.to_owned()));
    }
    let token = crate::secret::random("bt_");
    let hash = hash_token(&token);
    let record = TokenRecord {
        id: hash[..12].to_owned(),
        user: user.to_owned(),
        role,
        created_ms: crate::engine::duration::now_ms(),
        revoked_ms: None,
    };
    Ok((token, hash, record))
}

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}
