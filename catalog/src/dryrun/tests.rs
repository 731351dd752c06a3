//! Dry-run tests: the 11G catalog, R730 hosts in vSphere clusters.

use super::*;
use crate::index::{IndexOptions, PackageFilter};
use crate::testutil::*;
use firmflow_core::model::{ArtifactId, MaintenanceWindow, NewHost, PlanId, Policy};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T22:00:00Z")
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_default()
}

fn plan(policy: Policy) -> Plan {
    Plan {
        id: PlanId::new(),
        name: "rolling".into(),
        policy,
        status: PlanStatus::Approved,
        maintenance_window: None,
        approval_required: false,
        approved_by: None,
        created_by: None,
        idempotency_key: None,
        status_reason: None,
        created_at: t0(),
    }
}

fn r730(name: &str, cluster: Option<&str>) -> HostFacts {
    let mut nh = NewHost::idrac(name, "10.0.0.1");
    if let Some(c) = cluster {
        nh = nh.in_cluster("https://vc.example", c, format!("host-{name}"));
    }
    HostFacts {
        host: nh.into_host(t0()),
        system: system(Some(0x0600), Some("PowerEdge R730")),
        inventory: r730_inventory(),
    }
}

fn index() -> CatalogIndex {
    CatalogIndex::with_options(
        f11g(),
        IndexOptions {
            filter: PackageFilter::LinuxInBand,
            restrict_to_bundles: false,
        },
    )
}

fn catalog_policy(max: u32, min_online: u32) -> Policy {
    let mut p = Policy::new(UpdateMode::LatestFromCatalog);
    p.catalog_url = Some("Catalog.xml".into());
    p.max_concurrent = max;
    p.min_hosts_online = min_online;
    p
}

fn targets(hosts: &[HostFacts]) -> Vec<PlanTarget> {
    hosts
        .iter()
        .map(|h| PlanTarget {
            host_id: h.host.id,
            priority: 0,
            conditions: serde_json::Value::Null,
        })
        .collect()
}

fn input<'a>(
    plan: &'a Plan,
    targets: &'a [PlanTarget],
    hosts: &'a [HostFacts],
    idx: &'a CatalogIndex,
) -> DryRunInput<'a> {
    DryRunInput {
        plan,
        targets,
        hosts,
        artifacts: &[],
        catalog: Some(idx),
        locator: None,
        other_cluster_members: BTreeMap::new(),
        start: t0(),
        durations: DurationModel::default(),
    }
}

#[test]
fn rolling_waves_respect_cluster_capacity_and_max_concurrent() {
    let hosts: Vec<HostFacts> = ["a1", "a2", "a3", "b1", "b2", "b3"]
        .iter()
        .map(|n| {
            r730(
                n,
                Some(if n.starts_with('a') {
                    "domain-c1"
                } else {
                    "domain-c2"
                }),
            )
        })
        .collect();
    let t = targets(&hosts);
    let p = plan(catalog_policy(4, 2));
    let idx = index();
    let dr = dry_run(&input(&p, &t, &hosts, &idx));
    // 3 hosts per cluster, keep 2 online: one host per cluster at a time.
    assert_eq!(dr.waves.len(), 3, "{}", dr.to_text());
    assert!(dr.waves.iter().all(|w| w.hosts.len() == 2));
    assert_eq!(dr.waves[0].hosts, vec!["a1", "b1"]);
    let per_host = dr.hosts[0].duration_secs;
    assert_eq!(dr.estimated_duration_secs, 3 * per_host);
    assert_eq!(dr.waves[1].start_offset_secs, per_host);
    // R730 inventory: iDRAC (BMC restart), NIC (host reboot), drive (no reboot).
    let h = &dr.hosts[0];
    assert_eq!(h.packages.len(), 3);
    assert_eq!(h.packages[0].kind, ComponentKind::Bmc);
    assert_eq!(h.host_reboots, 1);
    assert_eq!(h.bmc_restarts, 1);
    assert!(h.maintenance_mode);
    let d = DurationModel::default();
    assert_eq!(
        h.duration_secs,
        (d.preflight
            + d.enter_maintenance
            + d.bmc_update
            + d.package_install * 2
            + d.host_reboot
            + d.validation
            + d.exit_maintenance)
            .as_secs()
    );
    assert_eq!(dr.host_reboots, 6);
    for c in &dr.clusters {
        assert_eq!(c.hosts, 3);
        assert_eq!(c.peak_in_maintenance, 1);
        assert_eq!(c.maintenance_secs_total, 3 * h.maintenance_secs);
    }
    assert!(dr.blocked.is_empty());
    let text = dr.to_text();
    assert!(text.contains("wave 1 at +0h00m: a1, b1"), "{text}");
    let json = serde_json::to_value(&dr).expect("json");
    assert_eq!(json["waves"].as_array().map(Vec::len), Some(3));
}

#[test]
fn max_concurrent_caps_hosts_without_cluster() {
    let hosts: Vec<HostFacts> = (0..5).map(|i| r730(&format!("h{i}"), None)).collect();
    let t = targets(&hosts);
    let p = plan(catalog_policy(2, 1));
    let idx = index();
    let dr = dry_run(&input(&p, &t, &hosts, &idx));
    let sizes: Vec<usize> = dr.waves.iter().map(|w| w.hosts.len()).collect();
    assert_eq!(sizes, vec![2, 2, 1]);
    assert!(
        dr.hosts.iter().all(|h| !h.maintenance_mode),
        "no cluster, no maintenance mode"
    );
}

#[test]
fn priority_orders_admission() {
    let hosts: Vec<HostFacts> = (0..3).map(|i| r730(&format!("h{i}"), None)).collect();
    let mut t = targets(&hosts);
    t[2].priority = 10;
    let p = plan(catalog_policy(1, 1));
    let idx = index();
    let dr = dry_run(&input(&p, &t, &hosts, &idx));
    assert_eq!(dr.waves[0].hosts, vec!["h2"]);
}

#[test]
fn a_cluster_too_small_blocks_its_hosts() {
    let hosts: Vec<HostFacts> = ["a1", "a2"].iter().map(|n| r730(n, Some("c1"))).collect();
    let t = targets(&hosts);
    let p = plan(catalog_policy(5, 2));
    let idx = index();
    let dr = dry_run(&input(&p, &t, &hosts, &idx));
    assert!(dr.waves.is_empty());
    assert_eq!(dr.blocked.len(), 2);
    assert!(
        dr.blocked[0].reason.contains("minHostsOnline is 2"),
        "{:?}",
        dr.blocked
    );
    // Two more members outside the plan make room.
    let mut inp = input(&p, &t, &hosts, &idx);
    inp.other_cluster_members.insert(
        hosts[0].host.cluster_key().expect("cluster"),
        ["x1".to_string(), "x2".to_string()].into(),
    );
    let dr = dry_run(&inp);
    assert!(dr.blocked.is_empty());
    assert_eq!(dr.waves.len(), 1, "{}", dr.to_text());
}

#[test]
fn the_window_delays_the_first_wave_and_unknown_models_fail_fast() {
    let mut hosts = vec![r730("a", None), r730("b", None)];
    hosts[1].system = system(Some(0x0B4F), Some("PowerEdge HS5610"));
    let t = targets(&hosts);
    let mut p = plan(catalog_policy(5, 1));
    p.maintenance_window = Some(MaintenanceWindow {
        start: t0() + chrono::Duration::hours(2),
        end: t0() + chrono::Duration::hours(10),
    });
    let idx = index();
    let dr = dry_run(&input(&p, &t, &hosts, &idx));
    assert_eq!(dr.waves.len(), 1);
    assert_eq!(dr.waves[0].start_offset_secs, 7200);
    assert_eq!(dr.failing_hosts, 1);
    let b = dr.hosts.iter().find(|h| h.host == "b").expect("b");
    assert!(b.error.as_deref().unwrap_or("").contains("0B4F"));
    assert!(dr.to_text().contains("would fail: b"));
}

#[test]
fn specific_package_mode_uses_the_artifacts() {
    let hosts = vec![r730("a", None)];
    let t = targets(&hosts);
    let mut pol = Policy::new(UpdateMode::SpecificPackage);
    pol.max_concurrent = 1;
    let p = plan(pol);
    let arts = vec![Artifact {
        id: ArtifactId::new(),
        component: "159".into(),
        image_uri: "https://repo.example/bios.exe".into(),
        version: Some("2.6.0".into()),
        checksum: None,
        size_bytes: None,
        metadata: serde_json::Value::Null,
    }];
    let idx = index();
    let mut inp = input(&p, &t, &hosts, &idx);
    inp.artifacts = &arts;
    inp.catalog = None;
    let dr = dry_run(&inp);
    assert_eq!(dr.hosts[0].packages.len(), 1);
    assert_eq!(dr.hosts[0].packages[0].target, "2.6.0");
    assert_eq!(dr.hosts[0].host_reboots, 1);
    assert!(
        dr.hosts[0].warnings.is_empty(),
        "requireMaintenanceMode defaults on: {:?}",
        dr.hosts[0].warnings
    );
}
