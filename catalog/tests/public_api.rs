//! End to end through the public API only, as `firmflow_redfish::catalog`
//! users see it: a gzip'd UTF-16 catalog served over HTTP, an index,
//! compliance as JSON and a table, a dry run, and the mirror rewrite.

use chrono::{TimeZone, Utc};
use firmflow_catalog::dryrun::{DryRunInput, DurationModel, HostFacts, dry_run};
use firmflow_catalog::{
    Action, CatalogIndex, CatalogSource, PackageLocator, assess_host, render_table,
    rewrite_base_location,
};
use firmflow_core::bmc::{FirmwareComponent, Health, Inventory, PciIds, PowerState, SystemInfo};
use firmflow_core::model::{
    ComponentKind, NewHost, Plan, PlanId, PlanStatus, PlanTarget, Policy, UpdateMode,
};
use std::collections::BTreeMap;
use std::io::Write;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const F25: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/dell-catalog-2025-04-excerpt.utf16le.xml"
);

fn nvme(id: &str, version: &str, sub_device: &str) -> FirmwareComponent {
    FirmwareComponent {
        id: id.into(),
        name: id.into(),
        version: version.into(),
        component_id: Some("0".into()),
        kind: ComponentKind::Drive,
        updateable: true,
        installed: true,
        pci: Some(PciIds {
            vendor_id: Some("1e0f".into()),
            device_id: Some("0025".into()),
            subsystem_vendor_id: Some("1028".into()),
            subsystem_id: Some(sub_device.into()),
        }),
        release_date: None,
    }
}

#[tokio::test]
async fn served_catalog_to_compliance_and_dry_run() {
    let raw = std::fs::read(F25).expect("fixture");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).expect("gzip");
    let body = gz.finish().expect("gzip");
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/catalog/Catalog.xml.gz"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(body.clone()))
        .mount(&server)
        .await;
    let url = format!("{}/catalog/Catalog.xml.gz", server.uri());
    let loaded = CatalogSource::new()
        .expect("client")
        .load(&url)
        .await
        .expect("load");
    let index = CatalogIndex::new(loaded.catalog.clone());

    let system = SystemInfo {
        model: Some("PowerEdge R6515".into()),
        service_tag: Some("ABC1234".into()),
        system_id: Some(0x08FC),
        power: PowerState::On,
        health: Health::Ok,
        bios_version: None,
        bmc_version: None,
        bmc_model: None,
        manufacturer: None,
    };
    let inventory = Inventory {
        components: vec![
            nvme("Disk.Bay.0", "1.0.0", "223E"),
            nvme("Disk.Bay.1", "2.0.0", "2235"),
            nvme("Disk.Bay.2", "3.0.0", "2233"),
        ],
    };
    let mut policy = Policy::new(UpdateMode::LatestFromCatalog);
    policy.catalog_url = Some(url.clone());
    let report = assess_host(&index, "r6515-01", &system, &inventory, &policy).expect("assess");
    let actions: Vec<Action> = report.components.iter().map(|c| c.action).collect();
    assert_eq!(actions, [Action::Upgrade, Action::Same, Action::Downgrade]);
    assert!(report.components.iter().all(|c| c.matched_by_pci));
    let json = serde_json::to_string(&report).expect("json");
    assert!(json.contains("\"action\":\"downgrade\""));
    let table = render_table(std::slice::from_ref(&report));
    assert!(table.contains("r6515-01"));
    let pkgs = report.packages(&index, &PackageLocator::new(url.clone()));
    assert_eq!(pkgs.len(), 1);
    assert!(pkgs[0].source_uri_contains("dl.dell.com"));

    // Dry run of a two-host plan.
    let now = Utc
        .with_ymd_and_hms(2026, 3, 1, 22, 0, 0)
        .single()
        .expect("date");
    let hosts: Vec<HostFacts> = ["a", "b"]
        .iter()
        .map(|n| HostFacts {
            host: NewHost::idrac(*n, "10.0.0.9").into_host(now),
            system: system.clone(),
            inventory: inventory.clone(),
        })
        .collect();
    let targets: Vec<PlanTarget> = hosts
        .iter()
        .map(|h| PlanTarget {
            host_id: h.host.id,
            priority: 0,
            conditions: serde_json::Value::Null,
        })
        .collect();
    let plan = Plan {
        id: PlanId::new(),
        name: "nvme".into(),
        policy,
        status: PlanStatus::Draft,
        maintenance_window: None,
        approval_required: true,
        approved_by: None,
        created_by: None,
        idempotency_key: None,
        status_reason: None,
        created_at: now,
    };
    let dr = dry_run(&DryRunInput {
        plan: &plan,
        targets: &targets,
        hosts: &hosts,
        artifacts: &[],
        catalog: Some(&index),
        locator: None,
        other_cluster_members: BTreeMap::new(),
        start: now,
        durations: DurationModel::default(),
    });
    assert_eq!(dr.waves.len(), 2, "maxConcurrent defaults to 1");
    assert_eq!(dr.packages, 2);
    assert!(dr.estimated_duration_secs > 0);

    // The mirror copy of the same catalog.
    let mirror = rewrite_base_location(&body, "Catalog.xml.gz", "10.1.1.1/dell", Some("HTTP"))
        .expect("rewrite");
    let text = String::from_utf8(mirror).expect("utf-8");
    assert!(text.contains("baseLocation=\"10.1.1.1/dell\""));
    assert!(!text.contains("downloads.dell.com"));
}

trait SourceUri {
    fn source_uri_contains(&self, s: &str) -> bool;
}

impl SourceUri for firmflow_core::model::Package {
    fn source_uri_contains(&self, s: &str) -> bool {
        matches!(&self.source, firmflow_core::model::PackageSource::ImageUri { uri } if uri.contains(s))
    }
}
