//! `firmflow inventory` and fleet-wide `firmflow compliance`: read every
//! selected BMC in parallel (a progress bar on stderr), remember what was
//! read in the store (model and service tag on the host, the firmware list
//! as an `inventory_collected` event), and print a table or JSON.

use crate::context::{Ctx, find_host_in};
use crate::exit::{self, usage};
use crate::table::Table;
use anyhow::Context as _;
use firmflow_catalog::{CatalogIndex, CatalogSource, HostCompliance, HostFacts, assess_host};
use firmflow_core::bmc::{BmcConnector, Inventory, SystemInfo};
use firmflow_core::model::{EventType, Host, NewEvent, Policy, UpdateMode};
use firmflow_core::store::Store;
use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// Event type under which an inventory is kept.
pub const INVENTORY_EVENT: &str = "inventory_collected";

/// Which hosts a read command covers.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct Selection {
    /// Hosts (fqdn, mgmt_ip or id); default: every registered host.
    pub hosts: Vec<String>,
    /// Register the hosts of this CSV/JSON file first (with the embedded
    /// store: the only way to name hosts).
    #[arg(long, value_name = "FILE")]
    pub hosts_file: Option<PathBuf>,
    /// BMCs read at once.
    #[arg(long, default_value_t = 16)]
    pub parallel: usize,
}

/// The hosts of a selection.
pub async fn select(ctx: &Ctx, sel: &Selection) -> anyhow::Result<Vec<Host>> {
    if let Some(f) = &sel.hosts_file {
        let entries = firmflow_ops::hosts::read_file(f)?;
        crate::hosts_cmd::import_entries(ctx.store.as_ref(), &entries).await?;
    }
    let all = ctx.store.list_hosts().await?;
    if sel.hosts.is_empty() {
        if all.is_empty() {
            return Err(usage(if ctx.persistent {
                "no hosts registered: `firmflow hosts import HOSTS.csv` first".to_string()
            } else {
                "no hosts: without --database-url nothing is remembered between commands; \
                 pass --hosts-file HOSTS.csv"
                    .to_string()
            }));
        }
        return Ok(all);
    }
    sel.hosts.iter().map(|r| find_host_in(&all, r)).collect()
}

/// What one BMC said.
pub struct Read {
    /// The host.
    pub host: Host,
    /// System and firmware, or why not.
    pub result: Result<(SystemInfo, Inventory), String>,
}

/// Reads `hosts` in parallel and records the results in the store.
pub async fn read_all(ctx: &Ctx, hosts: Vec<Host>, parallel: usize) -> anyhow::Result<Vec<Read>> {
    let connector = ctx.connector()?;
    let bar = ProgressBar::with_draw_target(
        Some(hosts.len() as u64),
        if ctx.progress() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        ProgressStyle::with_template("reading BMCs [{bar:30.cyan/blue}] {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let reads: Vec<Read> = futures::stream::iter(hosts.into_iter().map(|h| {
        let c = connector.clone();
        let bar = bar.clone();
        async move {
            let result = read_one(c.as_ref(), &h).await;
            bar.set_message(h.fqdn.clone());
            bar.inc(1);
            Read { host: h, result }
        }
    }))
    .buffered(parallel.max(1))
    .collect()
    .await;
    bar.finish_and_clear();
    for r in &reads {
        record(ctx.store.as_ref(), r).await?;
    }
    Ok(reads)
}

async fn read_one(c: &dyn BmcConnector, h: &Host) -> Result<(SystemInfo, Inventory), String> {
    let d = c.connect(h).await.map_err(|e| e.to_string())?;
    let r = async {
        let s = d.system().await?;
        let i = d.inventory().await?;
        Ok::<_, firmflow_core::bmc::Error>((s, i))
    }
    .await;
    // Log out on every path: iDRACs have few session slots.
    let _ = d.close().await;
    r.map_err(|e| e.to_string())
}

async fn record(store: &dyn Store, r: &Read) -> anyhow::Result<()> {
    let Ok((system, inventory)) = &r.result else {
        return Ok(());
    };
    let mut h = r.host.clone();
    if system.model.is_some() {
        h.model = system.model.clone();
    }
    if system.service_tag.is_some() {
        h.service_tag = system.service_tag.clone();
    }
    if h != r.host {
        store.update_host(&h).await?;
    }
    let components: Vec<_> = inventory
        .installed()
        .map(|c| json!({"name": c.name, "component_id": c.component_id, "version": c.version, "kind": c.kind}))
        .collect();
    let mut ev = NewEvent::info(
        EventType::Other(INVENTORY_EVENT.into()),
        format!("inventory of {}: {} components", h.fqdn, components.len()),
    )
    .details(json!({
        "model": system.model,
        "service_tag": system.service_tag,
        "system_id": system.system_id,
        "bios_version": system.bios_version,
        "bmc_version": system.bmc_version,
        "power": system.power,
        "health": system.health,
        "components": components,
    }));
    ev.host_id = Some(h.id);
    store.append_event(ev).await?;
    Ok(())
}

fn version_of(inv: &Inventory, cid: &str) -> String {
    inv.installed_for(cid)
        .map(|c| c.version.clone())
        .unwrap_or_else(|| "-".into())
}

/// `firmflow inventory`. Exit 1 when a BMC could not be read.
pub async fn inventory(ctx: &Ctx, sel: &Selection, out: &mut dyn Write) -> anyhow::Result<bool> {
    let hosts = select(ctx, sel).await?;
    let reads = read_all(ctx, hosts, sel.parallel).await?;
    let ok = reads.iter().all(|r| r.result.is_ok());
    if ctx.g.json {
        let v: Vec<_> = reads
            .iter()
            .map(|r| match &r.result {
                Ok((s, i)) => {
                    json!({"host": r.host.fqdn, "id": r.host.id, "system": s, "inventory": i})
                }
                Err(e) => json!({"host": r.host.fqdn, "id": r.host.id, "error": e}),
            })
            .collect();
        serde_json::to_writer_pretty(&mut *out, &v)?;
        writeln!(out)?;
        return Ok(ok);
    }
    let mut t = Table::new(&[
        "HOST",
        "MODEL",
        "TAG",
        "BIOS",
        "IDRAC",
        "COMPONENTS",
        "POWER",
        "HEALTH",
    ]);
    let mut errors = Vec::new();
    for r in &reads {
        match &r.result {
            Ok((s, i)) => t.row(vec![
                r.host.fqdn.clone(),
                s.model.clone().unwrap_or_default(),
                s.service_tag.clone().unwrap_or_default(),
                s.bios_version
                    .clone()
                    .unwrap_or_else(|| version_of(i, "159")),
                s.bmc_version
                    .clone()
                    .unwrap_or_else(|| version_of(i, "25227")),
                i.installed().count().to_string(),
                format!("{:?}", s.power).to_lowercase(),
                format!("{:?}", s.health).to_lowercase(),
            ]),
            Err(e) => {
                t.row(vec![r.host.fqdn.clone(), "(not read: see below)".into()]);
                errors.push(format!("{}: {e}", r.host.fqdn));
            }
        }
    }
    write!(out, "{}", t.render())?;
    writeln!(
        out,
        "{} of {} BMCs read{}",
        reads.len() - errors.len(),
        reads.len(),
        if ctx.persistent {
            "; inventory stored"
        } else {
            ""
        }
    )?;
    for e in &errors {
        writeln!(out, "error: {e}")?;
    }
    Ok(ok)
}

/// Policy knobs that change compliance verdicts.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct Verdicts {
    /// Count downgrades as installable.
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Count same versions as installable.
    #[arg(long)]
    pub force: bool,
}

/// Loads a catalog (path, `.xml.gz` or URL).
pub async fn load_catalog(location: &str) -> anyhow::Result<Arc<CatalogIndex>> {
    let loaded = CatalogSource::new()?
        .load(location)
        .await
        .with_context(|| format!("loading catalog {location}"))?;
    Ok(Arc::new(CatalogIndex::new(loaded.catalog.clone())))
}

/// Facts of the hosts that could be read; the others with their errors.
pub fn facts(reads: &[Read]) -> (Vec<HostFacts>, Vec<(String, String)>) {
    let mut f = Vec::new();
    let mut e = Vec::new();
    for r in reads {
        match &r.result {
            Ok((system, inventory)) => f.push(HostFacts {
                host: r.host.clone(),
                system: system.clone(),
                inventory: inventory.clone(),
            }),
            Err(m) => e.push((r.host.fqdn.clone(), m.clone())),
        }
    }
    (f, e)
}

/// `firmflow compliance --catalog C [HOSTS]`: fleet-wide. Returns the exit
/// code: 1 when a BMC could not be read, else 4 when updates are pending,
/// else 0.
pub async fn compliance(
    ctx: &Ctx,
    catalog: &str,
    sel: &Selection,
    v: &Verdicts,
    out: &mut dyn Write,
) -> anyhow::Result<u8> {
    let hosts = select(ctx, sel).await?;
    let index = load_catalog(catalog).await?;
    let reads = read_all(ctx, hosts, sel.parallel).await?;
    let mut policy = Policy::new(UpdateMode::LatestFromCatalog);
    policy.catalog_url = Some(catalog.to_string());
    policy.allow_downgrade = Some(v.allow_downgrade);
    policy.force = Some(v.force);
    let (facts, errors) = facts(&reads);
    let mut reports: Vec<HostCompliance> = Vec::new();
    let mut problems = errors.clone();
    for f in &facts {
        match assess_host(&index, &f.host.fqdn, &f.system, &f.inventory, &policy) {
            Ok(r) => reports.push(r),
            Err(e) => problems.push((f.host.fqdn.clone(), e.to_string())),
        }
    }
    let compliant = reports.iter().filter(|r| r.summary.to_install == 0).count();
    let upgrades: usize = reports.iter().map(|r| r.summary.upgrade).sum();
    let downgrades: usize = reports.iter().map(|r| r.summary.downgrade).sum();
    let not_applicable: usize = reports.iter().map(|r| r.summary.not_in_catalog).sum();
    let to_install: usize = reports.iter().map(|r| r.summary.to_install).sum();
    if ctx.g.json {
        serde_json::to_writer_pretty(
            &mut *out,
            &json!({
                "catalog": catalog,
                "hosts": reports,
                "errors": problems.iter().map(|(h, e)| json!({"host": h, "error": e})).collect::<Vec<_>>(),
                "summary": {
                    "hosts": reports.len() + problems.len(),
                    "compliant": compliant,
                    "needing_updates": reports.len() - compliant,
                    "unreadable": problems.len(),
                    "upgrades": upgrades,
                    "downgrades": downgrades,
                    "not_applicable": not_applicable,
                    "packages_to_install": to_install,
                },
            }),
        )?;
        writeln!(out)?;
    } else {
        write!(out, "{}", firmflow_catalog::render_table(&reports))?;
        let mut t = Table::new(&[
            "HOST",
            "COMPONENTS",
            "UPGRADES",
            "DOWNGRADES",
            "SAME",
            "N/A",
            "INSTALL",
            "REBOOT",
        ]);
        for r in &reports {
            let s = &r.summary;
            t.row(vec![
                r.host.clone(),
                s.components.to_string(),
                s.upgrade.to_string(),
                s.downgrade.to_string(),
                s.same.to_string(),
                s.not_in_catalog.to_string(),
                s.to_install.to_string(),
                if s.reboot_required { "host" } else { "no" }.into(),
            ]);
        }
        writeln!(out, "\nSUMMARY\n{}", t.render())?;
        writeln!(
            out,
            "{} host(s): {compliant} compliant, {} need updates, {} unreadable; \
             {upgrades} upgrade(s), {downgrades} downgrade(s), {not_applicable} not applicable \
             (not in the catalog); {to_install} package(s) would be installed",
            reports.len() + problems.len(),
            reports.len() - compliant,
            problems.len()
        )?;
        for (h, e) in &problems {
            writeln!(out, "error: {h}: {e}")?;
        }
    }
    Ok(if !problems.is_empty() {
        exit::FAILURE
    } else if to_install > 0 {
        exit::PENDING
    } else {
        exit::OK
    })
}
