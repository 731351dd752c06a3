//! `vault:` references: HashiCorp Vault KV v2 over HTTP
//! (`GET /v1/<mount>/data/<path>`), with the token kept in a
//! [`SecretString`] and sent as a sensitive header.

use crate::fields::credential_from;
use crate::reference::{Reference, VaultRef};
use crate::{Credential, CredentialProvider, Error, err};
use async_trait::async_trait;
use reqwest::header::HeaderValue;
use reqwest::{StatusCode, redirect};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// Larger answers are not KV secrets; the cap bounds memory per resolve.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How to reach Vault.
#[derive(Clone, Debug)]
pub struct VaultConfig {
    /// Base address, e.g. `https://vault.example.com:8200`.
    pub address: Url,
    /// Token; when `None`, [`VaultProvider::new`] reads `VAULT_TOKEN`.
    pub token: Option<SecretString>,
    /// Enterprise namespace, sent as `X-Vault-Namespace`.
    pub namespace: Option<String>,
    /// Field of the secret holding the username.
    pub username_field: String,
    /// Field holding the password (a reference's `#field` overrides it).
    pub password_field: String,
    /// PEM CA bundle; when set it is the only trust anchor (as `VAULT_CACERT`).
    pub ca_file: Option<PathBuf>,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
}

impl VaultConfig {
    /// Defaults: fields `username`/`password`, 10 s request and 5 s connect timeout.
    pub fn new(address: Url) -> Self {
        Self {
            address,
            token: None,
            namespace: None,
            username_field: "username".into(),
            password_field: "password".into(),
            ca_file: None,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// Sets the token.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(SecretString::from(token.into()));
        self
    }

    /// Reads Vault's usual variables: `VAULT_ADDR` (required), `VAULT_TOKEN`,
    /// `VAULT_NAMESPACE`, `VAULT_CACERT`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`VaultConfig::from_env`], reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let address = get("VAULT_ADDR").ok_or(ConfigError::MissingAddress)?;
        let address = Url::parse(&address).map_err(|e| ConfigError::InvalidAddress {
            address: address.clone(),
            message: e.to_string(),
        })?;
        let mut config = Self::new(address);
        config.token = get("VAULT_TOKEN").map(SecretString::from);
        config.namespace = get("VAULT_NAMESPACE");
        config.ca_file = get("VAULT_CACERT").map(PathBuf::from);
        Ok(config)
    }
}

/// Why a [`VaultProvider`] could not be built. Never contains the token.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No address configured.
    #[error("no Vault address: configure one or set VAULT_ADDR")]
    MissingAddress,
    /// The address is unusable.
    #[error("Vault address {address} is invalid: {message}")]
    InvalidAddress {
        /// The address (with any user info removed).
        address: String,
        /// What is wrong.
        message: String,
    },
    /// No token configured and `VAULT_TOKEN` unset.
    #[error("no Vault token: configure one or set VAULT_TOKEN")]
    MissingToken,
    /// The token cannot be sent as an HTTP header.
    #[error("the Vault token contains characters not allowed in an HTTP header")]
    InvalidToken,
    /// The namespace cannot be sent as an HTTP header.
    #[error("Vault namespace {0:?} is not a valid HTTP header value")]
    InvalidNamespace(String),
    /// The CA file could not be used.
    #[error("Vault CA file {path}: {message}")]
    CaFile {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the Vault HTTP client: {0}")]
    Client(String),
}

/// Resolves `vault:<mount>/<path>[#field]` from a KV v2 engine.
///
/// Status mapping: 401/403 → [`Error::Refused`], 404 → [`Error::NotFound`],
/// 5xx, 429, timeouts, connection failures and unreadable answers →
/// [`Error::Unavailable`], other 4xx → [`Error::Refused`]. Redirects are
/// followed only within the same origin, so the token never goes elsewhere.
#[derive(Clone, Debug)]
pub struct VaultProvider {
    client: reqwest::Client,
    address: Url,
    token: SecretString,
    namespace: Option<String>,
    username_field: String,
    password_field: String,
}

impl VaultProvider {
    /// Builds the provider; the token falls back to `VAULT_TOKEN`.
    pub fn new(config: VaultConfig) -> Result<Self, ConfigError> {
        let env_token = std::env::var("VAULT_TOKEN").ok();
        Self::build(config, env_token)
    }

    fn build(config: VaultConfig, env_token: Option<String>) -> Result<Self, ConfigError> {
        let address = config.address;
        let invalid = |message: &str| ConfigError::InvalidAddress {
            address: format!(
                "{}://{}",
                address.scheme(),
                address.host_str().unwrap_or_default()
            ),
            message: message.to_owned(),
        };
        if !matches!(address.scheme(), "http" | "https") || address.host_str().is_none() {
            return Err(invalid("expected http(s)://host[:port]"));
        }
        if !address.username().is_empty() || address.password().is_some() {
            return Err(invalid(
                "must not carry user info; authenticate with a token",
            ));
        }
        if address.query().is_some() || address.fragment().is_some() {
            return Err(invalid("must not have a query or fragment"));
        }
        if address.scheme() == "http"
            && !matches!(
                address.host_str(),
                Some("localhost" | "127.0.0.1" | "[::1]")
            )
        {
            tracing::warn!(vault = %address, "Vault address is plain http: the token travels unencrypted");
        }
        let token = config
            .token
            .or_else(|| env_token.filter(|t| !t.is_empty()).map(SecretString::from))
            .ok_or(ConfigError::MissingToken)?;
        HeaderValue::from_str(token.expose_secret()).map_err(|_| ConfigError::InvalidToken)?;
        if let Some(ns) = &config.namespace {
            HeaderValue::from_str(ns).map_err(|_| ConfigError::InvalidNamespace(ns.clone()))?;
        }

        let origin = address.origin();
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .redirect(redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > 3 || attempt.url().origin() != origin {
                    attempt.stop()
                } else {
                    attempt.follow()
                }
            }));
        if let Some(path) = &config.ca_file {
            let ca_error = |message: String| ConfigError::CaFile {
                path: path.display().to_string(),
                message,
            };
            let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ca_error(format!("not a PEM bundle: {e}")))?;
            if certs.is_empty() {
                return Err(ca_error("holds no PEM certificate".into()));
            }
            builder = builder.tls_built_in_root_certs(false);
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| ConfigError::Client(chain(&e)))?;
        Ok(Self {
            client,
            address,
            token,
            namespace: config.namespace,
            username_field: config.username_field,
            password_field: config.password_field,
        })
    }

    fn secret_url(&self, reference: &str, secret: &VaultRef) -> Result<Url, Error> {
        let mut url = self.address.clone();
        url.path_segments_mut()
            .map_err(|()| err::invalid(reference, "Vault address cannot take a path"))?
            .pop_if_empty()
            .push("v1")
            .push(&secret.mount)
            .push("data")
            .extend(&secret.path);
        Ok(url)
    }
}

#[async_trait]
impl CredentialProvider for VaultProvider {
    async fn resolve(&self, reference: &str) -> Result<Credential, Error> {
        let Reference::Vault(secret) = Reference::parse(reference)? else {
            return Err(err::invalid(
                reference,
                "VaultProvider resolves only vault: references",
            ));
        };
        let url = self.secret_url(reference, &secret)?;
        let mut token = HeaderValue::from_str(self.token.expose_secret())
            .map_err(|_| err::refused(reference, "the Vault token is not a valid header value"))?;
        token.set_sensitive(true);
        let mut request = self.client.get(url.clone()).header("X-Vault-Token", token);
        if let Some(ns) = &self.namespace {
            request = request.header("X-Vault-Namespace", ns);
        }
        let mut response = request.send().await.map_err(|e| {
            let what = if e.is_timeout() {
                "timed out"
            } else {
                "failed"
            };
            err::unavailable(reference, format!("Vault request {what}: {}", chain(&e)))
        })?;
        let status = response.status();
        tracing::debug!(reference, %status, "vault KV v2 read");

        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            err::unavailable(
                reference,
                format!("reading Vault's answer failed: {}", chain(&e)),
            )
        })? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(err::unavailable(reference, "Vault's answer exceeds 1 MiB"));
            }
            body.extend_from_slice(&chunk);
        }

        let place = format!("{}/{}", secret.mount, secret.path_string());
        if !status.is_success() {
            let detail = format!(
                "Vault answered HTTP {status} for {place}{}",
                vault_errors(&body)
            );
            return Err(match status {
                StatusCode::NOT_FOUND => err::not_found(reference, detail),
                StatusCode::TOO_MANY_REQUESTS => err::unavailable(reference, detail),
                s if s == StatusCode::UNAUTHORIZED || s == StatusCode::FORBIDDEN => err::refused(
                    reference,
                    format!("{detail}; check the token and its policy"),
                ),
                s if s.is_client_error() => err::refused(reference, detail),
                s if s.is_redirection() => err::unavailable(
                    reference,
                    format!(
                        "{detail}: a redirect to another origin is not followed with the token"
                    ),
                ),
                _ => err::unavailable(reference, detail),
            });
        }
        let document: Value = serde_json::from_slice(&body).map_err(|e| {
            err::unavailable(
                reference,
                format!(
                    "Vault's answer for {place} is not JSON (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        let Some(data) = document.get("data").and_then(|d| d.get("data")) else {
            return Err(err::unavailable(
                reference,
                format!(
                    "Vault's answer for {place} has no data.data; is `{}` a KV version 2 mount?",
                    secret.mount
                ),
            ));
        };
        let password_field = secret.field.as_deref().unwrap_or(&self.password_field);
        credential_from(data, &self.username_field, password_field)
            .map_err(|message| err::not_found(reference, format!("secret {place}: {message}")))
    }
}

/// Vault's `{"errors": [...]}` list, bounded; it describes the failure and
/// carries no secret data.
fn vault_errors(body: &[u8]) -> String {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return String::new();
    };
    let Some(Value::Array(errors)) = map.get("errors") else {
        return String::new();
    };
    let joined: Vec<&str> = errors.iter().filter_map(Value::as_str).collect();
    if joined.is_empty() {
        return String::new();
    }
    let text: String = joined.join("; ").chars().take(300).collect();
    format!(": {text}")
}

/// An error with its causes, which reqwest keeps in the source chain.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> VaultConfig {
        VaultConfig::new(Url::parse("http://127.0.0.1:8200").unwrap()).with_token("hvs.TOKEN-abc")
    }

    #[test]
    fn config_from_lookup() {
        let vars = [
            ("VAULT_ADDR", "https://vault.example.com:8200"),
            ("VAULT_TOKEN", "hvs.from-env"),
            ("VAULT_NAMESPACE", "ops"),
            ("VAULT_CACERT", ""),
        ];
        let lookup = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        let c = VaultConfig::from_lookup(lookup).unwrap();
        assert_eq!(c.address.as_str(), "https://vault.example.com:8200/");
        assert_eq!(
            c.token.as_ref().map(|t| t.expose_secret()),
            Some("hvs.from-env")
        );
        assert_eq!(c.namespace.as_deref(), Some("ops"));
        assert_eq!(c.ca_file, None, "empty variables count as unset");
        assert!(!format!("{c:?}").contains("hvs.from-env"));
        assert!(matches!(
            VaultConfig::from_lookup(|_| None),
            Err(ConfigError::MissingAddress)
        ));
        assert!(matches!(
            VaultConfig::from_lookup(|_| Some("not a url".into())),
            Err(ConfigError::InvalidAddress { .. })
        ));
    }

    #[test]
    fn token_comes_from_config_or_environment() {
        let mut c = config();
        c.token = None;
        assert!(matches!(
            VaultProvider::build(c.clone(), None),
            Err(ConfigError::MissingToken)
        ));
        assert!(matches!(
            VaultProvider::build(c.clone(), Some(String::new())),
            Err(ConfigError::MissingToken)
        ));
        let p = VaultProvider::build(c, Some("hvs.env".into())).unwrap();
        assert_eq!(p.token.expose_secret(), "hvs.env");
        let p = VaultProvider::build(config(), Some("hvs.env".into())).unwrap();
        assert_eq!(
            p.token.expose_secret(),
            "hvs.TOKEN-abc",
            "configured token wins"
        );
        assert!(!format!("{p:?}").contains("hvs.TOKEN-abc"));
    }

    #[test]
    fn bad_settings_are_refused_without_showing_the_token() {
        let mut c = config();
        c.token = Some(SecretString::from("bad\ntoken"));
        let e = VaultProvider::build(c, None).unwrap_err();
        assert!(matches!(e, ConfigError::InvalidToken) && !e.to_string().contains("bad"));
        let mut c = config();
        c.namespace = Some("a\nb".into());
        assert!(matches!(
            VaultProvider::build(c, None),
            Err(ConfigError::InvalidNamespace(_))
        ));
        for address in [
            "ftp://vault:21",
            "https://user:hunter2@vault:8200",
            "https://vault:8200/?x=1",
        ] {
            let mut c = config();
            c.address = Url::parse(address).unwrap();
            let e = VaultProvider::build(c, None).unwrap_err();
            assert!(
                matches!(e, ConfigError::InvalidAddress { .. }),
                "{address}: {e}"
            );
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn ca_file_is_loaded_or_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["vault.test".into()]).unwrap();
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, cert.cert.pem()).unwrap();
        let mut c = config();
        c.ca_file = Some(good);
        VaultProvider::build(c, None).unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        for (path, expected) in [
            (junk, "no PEM certificate"),
            (dir.path().join("absent.pem"), "absent.pem"),
        ] {
            let mut c = config();
            c.ca_file = Some(path);
            let e = VaultProvider::build(c, None).unwrap_err();
            assert!(
                matches!(e, ConfigError::CaFile { .. }) && e.to_string().contains(expected),
                "{e}"
            );
        }
    }

    #[test]
    fn url_encodes_segments_and_keeps_a_base_path() {
        let mut c = config();
        c.address = Url::parse("https://proxy.example.com/vault/").unwrap();
        let p = VaultProvider::build(c, None).unwrap();
        let Reference::Vault(r) = Reference::parse("vault:secret/data/fw/idrac r640?x").unwrap()
        else {
            panic!()
        };
        assert_eq!(
            p.secret_url("x", &r).unwrap().as_str(),
            "https://proxy.example.com/vault/v1/secret/data/fw/idrac%20r640%3Fx"
        );
    }

    #[test]
    fn vault_error_list_is_bounded() {
        assert_eq!(
            vault_errors(br#"{"errors":["permission denied"]}"#),
            ": permission denied"
        );
        assert_eq!(vault_errors(br#"{"errors":[]}"#), "");
        assert_eq!(vault_errors(b"<html>"), "");
        assert_eq!(
            vault_errors(format!(r#"{{"errors":["{}"]}}"#, "x".repeat(1000)).as_bytes()).len(),
            302
        );
    }
}
