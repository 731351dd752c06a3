//! `firmflow hosts import|list|show|remove`: the fleet registry.

use crate::context::{Ctx, find_host_in};
use crate::exit::usage;
use crate::table::Table;
use anyhow::Context as _;
use firmflow_core::model::{CredentialKind, EventType, Host};
use firmflow_core::store::EventFilter;
use serde_json::json;
use std::io::Write;
use std::path::Path;

pub use firmflow_ops::register::{ImportReport, import_entries};

/// `hosts import FILE`.
pub async fn import(
    ctx: &Ctx,
    file: &Path,
    check: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let entries = firmflow_ops::hosts::read_file(file)?;
    if check {
        if ctx.g.json {
            let hosts: Vec<_> = entries
                .iter()
                .map(|e| json!({"line": e.line, "host": e.host, "credential": e.credential}))
                .collect();
            serde_json::to_writer_pretty(&mut *out, &hosts)?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "{}: {} hosts, no problems (nothing stored: --check)",
                file.display(),
                entries.len()
            )?;
        }
        return Ok(());
    }
    ctx.require_persistent("hosts import")?;
    let (report, _) = import_entries(ctx.store.as_ref(), &entries).await?;
    if ctx.g.json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{}: {} added, {} updated, {} unchanged",
            file.display(),
            report.added.len(),
            report.updated.len(),
            report.unchanged.len()
        )?;
    }
    Ok(())
}

/// A `--filter` term: `tag=X`, `cluster=X`, `datacenter=X`, `kind=X`,
/// `model=X`, or text found in the fqdn or address.
fn matches(h: &Host, filter: &str) -> anyhow::Result<bool> {
    let Some((k, v)) = filter.split_once('=') else {
        let f = filter.to_ascii_lowercase();
        return Ok(
            h.fqdn.to_ascii_lowercase().contains(&f) || h.mgmt_ip.to_ascii_lowercase().contains(&f)
        );
    };
    Ok(match k.trim() {
        "tag" => h.tags.iter().any(|t| t == v),
        "cluster" => h.cluster_moid.as_deref() == Some(v),
        "datacenter" | "dc" => h.datacenter_id == Some(firmflow_ops::hosts::datacenter_id(v)),
        "kind" | "mgmt_kind" => h.mgmt_kind.as_str().eq_ignore_ascii_case(v),
        "model" => h
            .model
            .as_deref()
            .is_some_and(|m| m.to_ascii_lowercase().contains(&v.to_ascii_lowercase())),
        "vcenter" => h.vcenter_url.as_deref() == Some(v),
        other => {
            return Err(usage(format!(
                "--filter {other}=…: expected tag, cluster, datacenter, kind, model or vcenter"
            )));
        }
    })
}

/// `hosts list`.
pub async fn list(ctx: &Ctx, filters: &[String], out: &mut dyn Write) -> anyhow::Result<()> {
    let mut hosts = Vec::new();
    for h in ctx.store.list_hosts().await? {
        let mut keep = true;
        for f in filters {
            keep &= matches(&h, f)?;
        }
        if keep {
            hosts.push(h);
        }
    }
    if ctx.g.json {
        serde_json::to_writer_pretty(&mut *out, &hosts)?;
        writeln!(out)?;
        return Ok(());
    }
    if hosts.is_empty() {
        writeln!(
            out,
            "no hosts{}",
            if ctx.persistent {
                ""
            } else {
                " (no --database-url: the in-memory store starts empty every time)"
            }
        )?;
        return Ok(());
    }
    let mut t = Table::new(&[
        "FQDN", "BMC", "KIND", "MODEL", "TAG", "CLUSTER", "TAGS", "ID",
    ]);
    for h in &hosts {
        t.row(vec![
            h.fqdn.clone(),
            h.mgmt_ip.clone(),
            h.mgmt_kind.to_string(),
            h.model.clone().unwrap_or_else(|| "-".into()),
            h.service_tag.clone().unwrap_or_else(|| "-".into()),
            h.cluster_moid.clone().unwrap_or_else(|| "-".into()),
            if h.tags.is_empty() {
                "-".into()
            } else {
                h.tags.join(",")
            },
            h.id.to_string(),
        ]);
    }
    write!(out, "{}", t.render())?;
    writeln!(out, "{} host(s)", hosts.len())?;
    Ok(())
}

/// `hosts show HOST`.
pub async fn show(ctx: &Ctx, reference: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    let hosts = ctx.store.list_hosts().await?;
    let h = find_host_in(&hosts, reference)?;
    let creds = ctx
        .store
        .credentials_for(h.id, CredentialKind::Idrac)
        .await?;
    let events = ctx
        .store
        .list_events(&EventFilter {
            host_id: Some(h.id),
            ..Default::default()
        })
        .await?;
    let inventory = events
        .iter()
        .rev()
        .find(|e| e.event.event_type == EventType::Other(crate::inventory::INVENTORY_EVENT.into()));
    if ctx.g.json {
        serde_json::to_writer_pretty(
            &mut *out,
            &json!({
                "host": h,
                "credentials": creds.iter().map(|c| json!({"reference": c.vault_path, "host_specific": c.host_id.is_some()})).collect::<Vec<_>>(),
                "inventory": inventory.map(|e| json!({"at": e.created_at, "details": e.event.details})),
            }),
        )?;
        writeln!(out)?;
        return Ok(());
    }
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    writeln!(out, "host        {}", h.fqdn)?;
    writeln!(out, "id          {}", h.id)?;
    writeln!(out, "bmc         {} ({})", h.mgmt_ip, h.mgmt_kind)?;
    writeln!(out, "model       {}", opt(&h.model))?;
    writeln!(out, "service tag {}", opt(&h.service_tag))?;
    writeln!(
        out,
        "vcenter     {} cluster {} host {}",
        opt(&h.vcenter_url),
        opt(&h.cluster_moid),
        opt(&h.host_moid)
    )?;
    writeln!(
        out,
        "datacenter  {}",
        h.datacenter_id
            .map(|d| d.to_string())
            .unwrap_or_else(|| "-".into())
    )?;
    writeln!(out, "tags        {}", h.tags.join(", "))?;
    let refs: Vec<String> = creds
        .iter()
        .map(|c| {
            format!(
                "{}{}",
                c.vault_path,
                if c.host_id.is_none() { " (fleet)" } else { "" }
            )
        })
        .collect();
    writeln!(
        out,
        "credential  {}",
        if refs.is_empty() {
            "- (the fleet default: --credential, --password-env or [bmc] credential)".into()
        } else {
            refs.join(", ")
        }
    )?;
    match inventory {
        None => writeln!(
            out,
            "inventory   not read yet (`firmflow inventory {}`)",
            h.fqdn
        )?,
        Some(e) => {
            writeln!(
                out,
                "inventory   read {}",
                e.created_at.format("%Y-%m-%d %H:%M:%S UTC")
            )?;
            let mut t = Table::new(&["COMPONENT", "ID", "VERSION"]);
            if let Some(cs) = e.event.details.get("components").and_then(|c| c.as_array()) {
                for c in cs {
                    let s = |k: &str| c.get(k).and_then(|v| v.as_str()).unwrap_or("-").to_string();
                    t.row(vec![s("name"), s("component_id"), s("version")]);
                }
            }
            write!(out, "{}", t.render())?;
        }
    }
    Ok(())
}

/// `hosts remove HOST...`: refused for a host with a campaign in flight.
pub async fn remove(ctx: &Ctx, references: &[String], out: &mut dyn Write) -> anyhow::Result<()> {
    ctx.require_persistent("hosts remove")?;
    let hosts = ctx.store.list_hosts().await?;
    let mut targets = Vec::new();
    for r in references {
        targets.push(find_host_in(&hosts, r)?);
    }
    for h in &targets {
        ctx.store
            .remove_host(h.id)
            .await
            .with_context(|| format!("removing {}", h.fqdn))?;
        writeln!(out, "removed {} ({})", h.fqdn, h.id)?;
    }
    Ok(())
}
