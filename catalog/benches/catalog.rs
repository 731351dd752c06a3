//! Benchmark (not a test): parse the 2 MB fixture catalog and compute the
//! compliance of 10,000 hosts × 20 components.
//!
//! Run: `cargo bench -p firmflow-catalog --bench catalog` (release profile).
//! Targets: parse ≤ 30 ms, compliance ≤ 200 ms.

use firmflow_catalog::{
    CatalogIndex, IndexOptions, PackageFilter, PackageLocator, assess_host, read_catalog_bytes,
};
use firmflow_core::bmc::{FirmwareComponent, Health, Inventory, PowerState, SystemInfo};
use firmflow_core::model::{ComponentKind, Policy, UpdateMode};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/dell-custom-catalog-11g-2017.xml"
);
const HOSTS: usize = 10_000;
const COMPONENTS: usize = 20;

fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(v[0]), ms(v[v.len() / 2]))
}

/// CPU time of this thread (Linux `/proc/thread-self/schedstat`, ns): on a
/// shared 2-core machine wall time mostly measures the neighbours.
fn cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Runs `f`, returning (wall, cpu) durations.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration, Option<Duration>) {
    let c0 = cpu_ns();
    let t = Instant::now();
    let out = f();
    let wall = t.elapsed();
    let cpu = match (c0, cpu_ns()) {
        (Some(a), Some(b)) => Some(Duration::from_nanos(b.saturating_sub(a))),
        _ => None,
    };
    (out, wall, cpu)
}

fn min_ms(v: &[Duration]) -> f64 {
    v.iter()
        .min()
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(f64::NAN)
}

fn main() {
    let bytes = match std::fs::read(FIXTURE) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot read {FIXTURE}: {e}");
            std::process::exit(1);
        }
    };
    // Parse.
    let mut parse_times = Vec::new();
    let mut parse_cpu = Vec::new();
    let mut catalog = None;
    for _ in 0..30 {
        let (c, wall, cpu) = timed(|| read_catalog_bytes(&bytes, "Catalog.xml"));
        let c = match c {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        };
        parse_times.push(wall);
        parse_cpu.extend(cpu);
        catalog = Some(black_box(c));
    }
    let Some(catalog) = catalog else { return };
    let catalog = Arc::new(catalog);
    let (pmin, pmed) = stats(parse_times);

    // Index.
    let t = Instant::now();
    let index = CatalogIndex::with_options(
        catalog.clone(),
        IndexOptions {
            filter: PackageFilter::LinuxInBand,
            restrict_to_bundles: false,
        },
    );
    let index_ms = t.elapsed().as_secs_f64() * 1000.0;

    // Inventories: per system id, the component ids the catalog lists, with
    // installed versions that are older, equal or unrelated to the catalog's.
    let mut per_system: BTreeMap<u32, Vec<(String, String)>> = BTreeMap::new();
    for c in &catalog.components {
        for sid in c
            .systems
            .iter()
            .flat_map(|b| &b.models)
            .filter_map(|m| m.system_id_value)
        {
            for d in &c.devices {
                if let Some(cid) = &d.component_id {
                    per_system
                        .entry(sid)
                        .or_default()
                        .push((cid.clone(), c.vendor_version.clone()));
                }
            }
        }
    }
    let systems: Vec<(u32, Vec<(String, String)>)> = per_system
        .into_iter()
        .filter(|(_, v)| v.len() >= COMPONENTS)
        .map(|(s, mut v)| {
            v.sort();
            v.dedup_by(|a, b| a.0 == b.0);
            (s, v)
        })
        .filter(|(_, v)| v.len() >= COMPONENTS)
        .collect();
    let hosts: Vec<(SystemInfo, Inventory)> = (0..HOSTS)
        .map(|i| {
            let (sid, comps) = &systems[i % systems.len()];
            let components = (0..COMPONENTS)
                .map(|j| {
                    let (cid, target) = &comps[(i * 7 + j * 13) % comps.len()];
                    let version = match (i + j) % 4 {
                        0 => target.clone(),
                        1 => "1.0.0".to_string(),
                        2 => format!("{target}-0001"),
                        _ => "A00".to_string(),
                    };
                    FirmwareComponent {
                        id: format!("Installed-{cid}-{version}"),
                        name: format!("component {cid}"),
                        version,
                        component_id: Some(cid.clone()),
                        kind: ComponentKind::Other,
                        updateable: true,
                        installed: true,
                        pci: None,
                        release_date: None,
                    }
                })
                .collect();
            (
                SystemInfo {
                    model: None,
                    service_tag: None,
                    system_id: Some(*sid),
                    power: PowerState::On,
                    health: Health::Ok,
                    bios_version: None,
                    bmc_version: None,
                    bmc_model: None,
                    manufacturer: None,
                },
                Inventory { components },
            )
        })
        .collect();
    let policy = Policy::new(UpdateMode::LatestFromCatalog);
    let locator = PackageLocator::new("https://mirror.example/repo/Catalog.xml");

    let names: Vec<String> = (0..HOSTS).map(|i| format!("host-{i}")).collect();
    let mut comp_times = Vec::new();
    let mut comp_cpu = Vec::new();
    let mut pkg_times = Vec::new();
    let mut upgrades = 0usize;
    for _ in 0..7 {
        let (reports, wall, cpu) = timed(|| {
            hosts
                .iter()
                .zip(&names)
                .filter_map(|((sys, inv), name)| assess_host(&index, name, sys, inv, &policy).ok())
                .collect::<Vec<_>>()
        });
        comp_times.push(wall);
        comp_cpu.extend(cpu);
        upgrades = reports.iter().map(|r| r.summary.upgrade).sum();
        let t = Instant::now();
        let n: usize = reports
            .iter()
            .map(|r| r.packages(&index, &locator).len())
            .sum();
        pkg_times.push(t.elapsed());
        black_box((reports.len(), n));
    }
    let (cmin, cmed) = stats(comp_times);
    let (kmin, kmed) = stats(pkg_times);
    println!("firmflow-catalog benchmark");
    println!(
        "catalog: {} bytes, {} components, {} bundles, {} systems",
        bytes.len(),
        catalog.components.len(),
        catalog.bundles.len(),
        catalog.systems().len()
    );
    println!(
        "parse (30 runs):            wall min {pmin:.2} ms, median {pmed:.2} ms; thread CPU min {:.2} ms   (target <= 30 ms)",
        min_ms(&parse_cpu)
    );
    println!("index build:                {index_ms:.2} ms");
    println!(
        "compliance {HOSTS} hosts x {COMPONENTS} components (7 runs): wall min {cmin:.2} ms, median {cmed:.2} ms; thread CPU min {:.2} ms   (target <= 200 ms; {upgrades} upgrades found)",
        min_ms(&comp_cpu)
    );
    println!("package lists for all hosts (7 runs): wall min {kmin:.2} ms, median {kmed:.2} ms");
}
