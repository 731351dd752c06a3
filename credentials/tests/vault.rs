//! VaultProvider against a wiremock Vault: KV v2 success, status mapping,
//! malformed answers, and that no error or Debug output shows a secret.

use firmflow_credentials::{CredentialProvider, Error, VaultConfig, VaultProvider};
use serde_json::json;
use std::time::Duration;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "hvs.CAESIdonotleak";
const SECRET: &str = "s3cr3t-vault-value";
const SECRET_PATH: &str = "/v1/secret/data/firmflow/idrac-r640-01";

fn config(server: &MockServer) -> VaultConfig {
    let mut c = VaultConfig::new(server.uri().parse().unwrap()).with_token(TOKEN);
    c.timeout = Duration::from_millis(500);
    c
}

fn kv2(data: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "request_id": "7b5c1c5e-2d4b-4a43-9b6e-0c7d3e2b1a90",
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": {
            "data": data,
            "metadata": {"created_time": "2024-05-01T10:00:00Z", "deletion_time": "", "destroyed": false, "version": 3}
        },
        "wrap_info": null, "warnings": null, "auth": null
    }))
}

async fn serve(response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(SECRET_PATH))
        .respond_with(response)
        .mount(&server)
        .await;
    server
}

/// Resolves and, on failure, checks the error never shows token or secret.
async fn resolve(
    provider: &VaultProvider,
    reference: &str,
) -> Result<firmflow_credentials::Credential, Error> {
    let result = provider.resolve(reference).await;
    if let Err(e) = &result {
        for shown in [e.to_string(), format!("{e:?}")] {
            assert!(!shown.contains(SECRET) && !shown.contains(TOKEN), "{shown}");
        }
    }
    result
}

#[tokio::test]
async fn reads_kv2_secret_with_token_and_namespace_headers() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(SECRET_PATH))
        .and(header("X-Vault-Token", TOKEN))
        .and(header("X-Vault-Namespace", "ops/firmware"))
        .respond_with(kv2(json!({"username": "root", "password": SECRET})))
        .expect(2)
        .mount(&server)
        .await;
    let mut c = config(&server);
    c.namespace = Some("ops/firmware".into());
    let p = VaultProvider::new(c).unwrap();
    for reference in [
        "vault:secret/firmflow/idrac-r640-01",
        "vault:secret/data/firmflow/idrac-r640-01",
    ] {
        let cred = resolve(&p, reference).await.unwrap();
        assert_eq!((cred.username.as_str(), cred.expose()), ("root", SECRET));
        assert!(!format!("{cred:?}").contains(SECRET));
    }
    assert!(!format!("{p:?}").contains(TOKEN), "{p:?}");
}

#[tokio::test]
async fn field_names_are_configurable_and_overridable() {
    let server = serve(kv2(
        json!({"user": "admin", "pass": "not-this", "alt": SECRET}),
    ))
    .await;
    let mut c = config(&server);
    c.username_field = "user".into();
    c.password_field = "pass".into();
    let p = VaultProvider::new(c).unwrap();
    let cred = resolve(&p, "vault:secret/firmflow/idrac-r640-01#alt")
        .await
        .unwrap();
    assert_eq!((cred.username.as_str(), cred.expose()), ("admin", SECRET));
    let cred = resolve(&p, "vault:secret/firmflow/idrac-r640-01")
        .await
        .unwrap();
    assert_eq!(cred.expose(), "not-this");
}

async fn expect_error(response: ResponseTemplate, reference: &str) -> Error {
    let server = serve(response).await;
    let p = VaultProvider::new(config(&server)).unwrap();
    resolve(&p, reference).await.unwrap_err()
}

const REF: &str = "vault:secret/firmflow/idrac-r640-01";

#[tokio::test]
async fn forbidden_is_refused() {
    let body = json!({"errors": ["1 error occurred:\n\t* permission denied\n\n"]});
    let e = expect_error(ResponseTemplate::new(403).set_body_json(body), REF).await;
    assert!(matches!(e, Error::Refused { .. }), "{e:?}");
    assert!(
        e.to_string().contains("403") && e.to_string().contains("permission denied"),
        "{e}"
    );
}

#[tokio::test]
async fn missing_secret_is_not_found() {
    let e = expect_error(
        ResponseTemplate::new(404).set_body_json(json!({"errors": []})),
        REF,
    )
    .await;
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    assert!(
        e.to_string().contains("secret/firmflow/idrac-r640-01"),
        "{e}"
    );
    // Any path other than the mounted one is a 404 from wiremock too.
    let e = expect_error(kv2(json!({})), "vault:secret/firmflow/other").await;
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
}

#[tokio::test]
async fn server_errors_and_sealed_vault_are_unavailable() {
    for status in [500, 502, 503, 429] {
        let body = json!({"errors": ["Vault is sealed"]});
        let e = expect_error(ResponseTemplate::new(status).set_body_json(body), REF).await;
        assert!(matches!(e, Error::Unavailable { .. }), "{status}: {e:?}");
        assert!(e.to_string().contains(&status.to_string()), "{e}");
    }
}

#[tokio::test]
async fn malformed_json_is_unavailable_without_echoing_the_body() {
    let body = format!(r#"{{"data": {{"data": {{"username": "root", "password": {SECRET}"#);
    let e = expect_error(ResponseTemplate::new(200).set_body_string(body), REF).await;
    assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
    assert!(e.to_string().contains("not JSON (line 1"), "{e}");
    let e = expect_error(
        ResponseTemplate::new(200).set_body_string("<html>proxy</html>"),
        REF,
    )
    .await;
    assert!(e.to_string().contains("not JSON"), "{e}");
}

#[tokio::test]
async fn kv1_shaped_answer_is_explained() {
    let body = json!({"data": {"username": "root", "password": SECRET}});
    let e = expect_error(ResponseTemplate::new(200).set_body_json(body), REF).await;
    assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
    assert!(e.to_string().contains("KV version 2"), "{e}");
}

#[tokio::test]
async fn missing_or_mistyped_field_is_not_found_and_names_the_field() {
    let e = expect_error(kv2(json!({"password": SECRET})), REF).await;
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    assert!(e.to_string().contains("no field `username`"), "{e}");
    let e = expect_error(kv2(json!({"username": "root"})), REF).await;
    assert!(e.to_string().contains("no field `password`"), "{e}");
    let e = expect_error(kv2(json!({"username": SECRET, "password": 42})), REF).await;
    assert!(e.to_string().contains("`password` is a number"), "{e}");
    let e = expect_error(
        kv2(json!({"username": "root", "password": SECRET})),
        &format!("{REF}#nope"),
    )
    .await;
    assert!(e.to_string().contains("no field `nope`"), "{e}");
}

#[tokio::test]
async fn slow_vault_times_out_as_unavailable() {
    let slow =
        kv2(json!({"username": "root", "password": SECRET})).set_delay(Duration::from_secs(5));
    let server = serve(slow).await;
    let mut c = config(&server);
    c.timeout = Duration::from_millis(100);
    let p = VaultProvider::new(c).unwrap();
    let e = resolve(&p, REF).await.unwrap_err();
    assert!(
        matches!(e, Error::Unavailable { .. }) && e.to_string().contains("timed out"),
        "{e}"
    );
}

#[tokio::test]
async fn unreachable_vault_is_unavailable() {
    // A port that was just free; wiremock pools its servers, so dropping one
    // would not close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("http://127.0.0.1:{port}").parse().unwrap();
    let p = VaultProvider::new(VaultConfig::new(address).with_token(TOKEN)).unwrap();
    let e = resolve(&p, REF).await.unwrap_err();
    assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
}

#[tokio::test]
async fn token_is_not_sent_across_origins() {
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(kv2(json!({"username": "root", "password": SECRET})))
        .expect(0)
        .mount(&elsewhere)
        .await;
    let redirect = ResponseTemplate::new(307).insert_header(
        "Location",
        format!("{}{SECRET_PATH}", elsewhere.uri()).as_str(),
    );
    let e = expect_error(redirect, REF).await;
    assert!(
        matches!(e, Error::Unavailable { .. }) && e.to_string().contains("307"),
        "{e}"
    );
}

#[tokio::test]
async fn same_origin_redirect_is_followed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(SECRET_PATH))
        .respond_with(ResponseTemplate::new(307).insert_header("Location", "/v1/secret/data/moved"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/secret/data/moved"))
        .and(header("X-Vault-Token", TOKEN))
        .respond_with(kv2(json!({"username": "root", "password": SECRET})))
        .mount(&server)
        .await;
    let p = VaultProvider::new(config(&server)).unwrap();
    assert_eq!(resolve(&p, REF).await.unwrap().expose(), SECRET);
}
