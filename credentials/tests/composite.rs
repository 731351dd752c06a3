//! The providers wired as the executor uses them: one composite behind a
//! cache, resolving env, file and Vault references.

use firmflow_credentials::{
    CachingProvider, CompositeProvider, CredentialProvider, EnvProvider, Error, FileProvider,
    VaultConfig, VaultProvider,
};
use serde_json::json;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn one_provider_for_every_scheme_with_vault_reads_cached() {
    let vault = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/secret/data/fleet/idrac"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"data": {"data": {"username": "root", "password": "from-vault"}, "metadata": {}}}),
        ))
        .expect(1)
        .mount(&vault)
        .await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("creds.json");
    std::fs::write(
        &file,
        r#"{"vc": {"username": "administrator@vsphere.local", "password": "from-file"}}"#,
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    let config = VaultConfig::new(vault.uri().parse().unwrap()).with_token("hvs.t");
    let composite = CompositeProvider::new()
        .with(
            "env",
            EnvProvider::from_map([("BMC_USERNAME", "root"), ("BMC_PASSWORD", "from-env")]),
        )
        .with("file", FileProvider::new())
        .with("vault", VaultProvider::new(config).unwrap());
    let provider = CachingProvider::new(composite, Duration::from_secs(300));

    let from_file = format!("file:{}#vc", file.display());
    for _ in 0..3 {
        assert_eq!(
            provider
                .resolve("vault:secret/fleet/idrac")
                .await
                .unwrap()
                .expose(),
            "from-vault"
        );
        assert_eq!(
            provider.resolve("env:BMC").await.unwrap().expose(),
            "from-env"
        );
        assert_eq!(
            provider.resolve(&from_file).await.unwrap().expose(),
            "from-file"
        );
    }
    // Vault was asked once (the mock's expect(1) is checked on drop).
    provider.invalidate("vault:secret/fleet/idrac");
    let shared: &dyn CredentialProvider = &provider;
    let e = shared.resolve("ldap:cn=root").await.unwrap_err();
    assert!(matches!(e, Error::InvalidReference { .. }), "{e:?}");
    assert_eq!(provider.len(), 2);
}
