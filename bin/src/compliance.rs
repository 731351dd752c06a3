//! `firmflow compliance`: one BMC against a Dell catalog. Reads the
//! system facts and firmware inventory through the Redfish driver, loads
//! the catalog (file, `.xml.gz` or URL), and says per component what the
//! catalog offers and what firmflow would install. Changes nothing.
//!
//! The catalog is loaded before the BMC is touched; a system whose
//! `Manufacturer` is not Dell gets "not a Dell system, catalog does not
//! apply" rather than a system-id mismatch; the exit code says whether
//! updates are pending ([`exit_code`]).

use crate::exit;
use crate::setup;
use anyhow::Context;
use firmflow_catalog::{
    CatalogIndex, CatalogSource, HostCompliance, assess_host, check_manufacturer,
};
use firmflow_core::bmc::BmcDriver as _;
use firmflow_core::credentials::Credential;
use firmflow_core::model::{MgmtKind, NewHost, Policy, UpdateMode};
use firmflow_redfish::{Flavor, TlsMode};
use std::time::Duration;

/// What to assess.
#[derive(Debug)]
pub struct ComplianceArgs {
    /// Catalog location: path, `file://`, `http(s)://` (`.xml` or `.xml.gz`).
    pub catalog: String,
    /// BMC address: `https://host[:port]` or a bare host (HTTPS then).
    pub host: String,
    /// How the BMC is driven (`idrac` or generic `redfish`).
    pub kind: MgmtKind,
    /// The login (secret redacted in `Debug`).
    pub credential: Credential,
    /// TLS verification.
    pub tls: TlsMode,
    /// Policy knobs that change the verdicts.
    pub allow_downgrade: bool,
    /// Reinstall same versions.
    pub force: bool,
}

/// Loads the catalog, then reads the BMC and assesses it against the
/// catalog. The catalog comes first: a bad path or an unreadable file is
/// reported without a login spent on the BMC.
pub async fn run(args: &ComplianceArgs) -> anyhow::Result<HostCompliance> {
    let loaded = CatalogSource::new()?
        .load(&args.catalog)
        .await
        .with_context(|| format!("loading catalog {}", args.catalog))?;
    let index = CatalogIndex::new(loaded.catalog.clone());
    let connector = setup::connector(
        args.credential.clone(),
        args.tls.clone(),
        Default::default(),
        Duration::ZERO,
        None,
    );
    let mut nh = NewHost::idrac(args.host.clone(), args.host.clone());
    nh.mgmt_kind = args.kind.clone();
    let host = nh.into_host(chrono::Utc::now());
    let flavor = match args.kind {
        MgmtKind::Redfish => Flavor::Generic,
        _ => Flavor::Idrac,
    };
    let driver = connector
        .redfish_driver(&host, flavor)
        .await
        .with_context(|| format!("connecting to {}", args.host))?;
    let facts = async {
        let system = driver.system().await?;
        // A non-Dell system is told so before its inventory is read or its
        // (absent) Dell system id is looked up.
        let manufacturer = driver.manufacturer().await?;
        if check_manufacturer(&index, manufacturer.as_deref()).is_err() {
            return Ok::<_, firmflow_core::bmc::Error>((system, manufacturer, None));
        }
        let inventory = driver.inventory().await?;
        Ok((system, manufacturer, Some(inventory)))
    }
    .await;
    // Log out on every path (iDRACs have few session slots).
    let _ = driver.close().await;
    let (system, manufacturer, inventory) =
        facts.with_context(|| format!("reading {}", args.host))?;
    check_manufacturer(&index, manufacturer.as_deref())
        .with_context(|| format!("assessing {}", args.host))?;
    let inventory = inventory.unwrap_or_default();
    let mut policy = Policy::new(UpdateMode::LatestFromCatalog);
    policy.catalog_url = Some(args.catalog.clone());
    policy.allow_downgrade = Some(args.allow_downgrade);
    policy.force = Some(args.force);
    let shown = system
        .service_tag
        .as_ref()
        .map(|t| format!("{} ({t})", args.host))
        .unwrap_or_else(|| args.host.clone());
    assess_host(&index, &shown, &system, &inventory, &policy)
        .with_context(|| format!("assessing {} against {}", args.host, args.catalog))
}

/// The exit code of a compliance report: [`exit::PENDING`] when the
/// catalog calls for any install, else [`exit::OK`].
pub fn exit_code(report: &HostCompliance) -> u8 {
    if report.summary.to_install > 0 {
        exit::PENDING
    } else {
        exit::OK
    }
}
