//! Bearer tokens: the config holds their SHA-256 (never the token), each
//! with a role and optionally a datacenter. A request's [`Caller`] carries
//! the role (checked per route), the scope (rows of other datacenters are
//! not shown) and a stable user id for the audit trail.
//!
//! Without any configured token the API is open as anonymous admin; the
//! config refuses that on anything but a loopback address.

use crate::config::{Role, TokenSettings, hash_token};
use firmflow_core::model::{DatacenterId, UserId};
use sha2::{Digest, Sha256};

/// Who is calling.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The token's name (`anonymous` without tokens).
    pub name: String,
    /// Role.
    pub role: Role,
    /// Only this datacenter, when scoped.
    pub datacenter: Option<DatacenterId>,
    /// That datacenter as the config names it (for people: `GET /api/v1/me`).
    pub datacenter_name: Option<String>,
    /// Stable id for the audit trail (from the name).
    pub user_id: UserId,
}

impl Caller {
    /// Whether the caller may see a row of `dc`.
    pub fn sees(&self, dc: Option<DatacenterId>) -> bool {
        match self.datacenter {
            None => true,
            Some(mine) => dc == Some(mine),
        }
    }
}

/// The token table.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    entries: Vec<(String, TokenSettings)>,
}

/// Why a request is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthError {
    /// No or unknown token: 401.
    Unauthenticated(&'static str),
}

/// A stable user id for a name: the same on every daemon.
pub fn user_id(name: &str) -> UserId {
    let digest = Sha256::digest(format!("firmflowd-user:{name}"));
    let mut b = [0u8; 16];
    for (d, s) in b.iter_mut().zip(digest.iter()) {
        *d = *s;
    }
    UserId(uuid::Uuid::new_v8(b))
}

impl Tokens {
    /// From the config's `[[api.tokens]]`.
    pub fn new(tokens: &[TokenSettings]) -> Self {
        Self {
            entries: tokens
                .iter()
                .map(|t| (t.sha256.to_ascii_lowercase(), t.clone()))
                .collect(),
        }
    }

    /// Whether the API is open (no tokens configured).
    pub fn open(&self) -> bool {
        self.entries.is_empty()
    }

    /// The caller for an `Authorization` header value.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Caller, AuthError> {
        if self.open() {
            return Ok(Caller {
                name: "anonymous".into(),
                role: Role::Admin,
                datacenter: None,
                datacenter_name: None,
                user_id: user_id("anonymous"),
            });
        }
        let Some(h) = header else {
            return Err(AuthError::Unauthenticated(
                "missing Authorization: Bearer <token>",
            ));
        };
        let Some(token) = h
            .strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
        else {
            return Err(AuthError::Unauthenticated(
                "Authorization must be `Bearer <token>`",
            ));
        };
        let hash = hash_token(token);
        // Compare every entry without an early exit: no timing hint of a prefix.
        let mut found: Option<&TokenSettings> = None;
        for (h, t) in &self.entries {
            if constant_time_eq(h.as_bytes(), hash.as_bytes()) {
                found = Some(t);
            }
        }
        let t = found.ok_or(AuthError::Unauthenticated("unknown token"))?;
        Ok(Caller {
            name: t.name.clone(),
            role: t.role,
            datacenter: t
                .datacenter
                .as_deref()
                .map(firmflow_ops::hosts::datacenter_id),
            datacenter_name: t.datacenter.clone(),
            user_id: user_id(&t.name),
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::new(&[
            TokenSettings {
                name: "alice".into(),
                sha256: hash_token("a-secret"),
                role: Role::Operator,
                datacenter: Some("dc1".into()),
            },
            TokenSettings {
                name: "root".into(),
                sha256: hash_token("r-secret").to_uppercase(),
                role: Role::Admin,
                datacenter: None,
            },
        ])
    }

    #[test]
    fn tokens_map_to_roles_and_scopes() {
        let t = tokens();
        let a = t.authenticate(Some("Bearer a-secret")).unwrap();
        assert_eq!((a.name.as_str(), a.role), ("alice", Role::Operator));
        assert_eq!(
            a.datacenter,
            Some(firmflow_ops::hosts::datacenter_id("dc1"))
        );
        assert!(!a.sees(None));
        let r = t.authenticate(Some("Bearer r-secret")).unwrap();
        assert_eq!(r.role, Role::Admin);
        assert!(r.sees(Some(firmflow_ops::hosts::datacenter_id("dc9"))));
        assert_ne!(a.user_id, r.user_id);
    }

    #[test]
    fn missing_or_wrong_tokens_are_refused() {
        let t = tokens();
        assert!(t.authenticate(None).is_err());
        assert!(t.authenticate(Some("Bearer nope")).is_err());
        assert!(t.authenticate(Some("Basic YTpi")).is_err());
        assert!(Tokens::default().authenticate(None).is_ok());
    }
}
