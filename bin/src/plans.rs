//! `firmflow plan …` and `firmflow run`: plan files into stored plans,
//! the dry run, the approval gate, start/pause/resume/cancel, status, and
//! the one-shot foreground campaign.

use crate::context::Ctx;
use crate::exit::{refused, usage};
use crate::table::Table;
use crate::watch::{self, Outcome};
use anyhow::Context as _;
use chrono::Utc;
use firmflow_catalog::{DryRunInput, DurationModel, PackageLocator, dry_run};
use firmflow_core::executor::{Executor, PlanError};
use firmflow_core::model::{NewPlan, Plan, PlanId, PlanStatus, RunState};
use firmflow_core::store::PlanCreated;
use firmflow_ops::PlanFile;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Finds a plan by id, unique id prefix or name (the newest of that name).
pub async fn find_plan(ctx: &Ctx, reference: &str) -> anyhow::Result<Plan> {
    let r = reference.trim();
    if let Ok(id) = r.parse::<PlanId>() {
        return ctx
            .store
            .get_plan(id)
            .await
            .map_err(|_| usage(format!("no plan {id} (see `firmflow plan list`)")));
    }
    let plans = ctx.store.list_plans().await?;
    if let Some(p) = plans.iter().find(|p| p.name == r) {
        return Ok(p.clone());
    }
    let by_prefix: Vec<&Plan> = plans
        .iter()
        .filter(|p| r.len() >= 4 && p.id.to_string().starts_with(&r.to_ascii_lowercase()))
        .collect();
    match by_prefix.as_slice() {
        [p] => Ok((*p).clone()),
        [] => Err(usage(format!(
            "no plan is called {r:?} (id, id prefix or name; see `firmflow plan list`){}",
            if ctx.persistent {
                ""
            } else {
                " — without --database-url no plan outlives the command that made it"
            }
        ))),
        _ => Err(usage(format!(
            "{r:?} matches several plan ids; give more of it"
        ))),
    }
}

/// Reads a plan file and matches it against the registered hosts.
pub async fn load_plan_file(ctx: &Ctx, file: &Path) -> anyhow::Result<(PlanFile, NewPlan)> {
    let pf = firmflow_ops::plan_file::read(file)?;
    let hosts = ctx.store.list_hosts().await?;
    if hosts.is_empty() {
        return Err(usage(format!(
            "{}: no hosts are registered to match its targets against{}",
            file.display(),
            if ctx.persistent {
                " (`firmflow hosts import HOSTS.csv`)"
            } else {
                " (without --database-url pass --hosts HOSTS.csv)"
            }
        )));
    }
    let mut plan = pf.check(&hosts, &[])?;
    plan.created_by = Some(ctx.operator().1);
    Ok((pf, plan))
}

/// Creates the plan (validated by the executor with live cluster sizes);
/// an existing plan with the same idempotency key is returned as is.
pub async fn create(ctx: &Ctx, pf: &PlanFile, plan: NewPlan) -> anyhow::Result<PlanCreated> {
    let hosts = crate::context::hosts_by_id(
        ctx.store.as_ref(),
        &plan.targets.iter().map(|t| t.host_id).collect::<Vec<_>>(),
    )
    .await?;
    let exec = ctx.executor_for_hosts(&hosts, &[]).await?;
    match exec.create_plan(plan).await {
        Ok(c) => Ok(c),
        Err(PlanError::Invalid(inv)) => Err(pf.explain(&inv).into()),
        Err(e) => Err(e.into()),
    }
}

/// `plan create FILE`.
pub async fn cmd_create(ctx: &Ctx, file: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    ctx.require_persistent("plan create")?;
    let (pf, plan) = load_plan_file(ctx, file).await?;
    let c = create(ctx, &pf, plan).await?;
    if ctx.g.json {
        serde_json::to_writer_pretty(
            &mut *out,
            &serde_json::json!({"plan": c.plan, "created": c.created}),
        )?;
        writeln!(out)?;
        return Ok(());
    }
    let n = ctx.store.plan_targets(c.plan.id).await?.len();
    if c.created {
        writeln!(
            out,
            "created plan {} {:?}: {n} host(s), {}; next: firmflow plan dry-run {} && firmflow plan {} {}",
            c.plan.id,
            c.plan.name,
            c.plan.status,
            c.plan.id,
            if c.plan.approval_required {
                "approve"
            } else {
                "start"
            },
            c.plan.id
        )?;
    } else {
        writeln!(
            out,
            "plan {} {:?} already exists for this file ({}, {n} host(s)); nothing created",
            c.plan.id, c.plan.name, c.plan.status
        )?;
    }
    Ok(())
}

/// `plan validate FILE`: every problem with its line.
pub async fn cmd_validate(ctx: &Ctx, file: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    let pf = firmflow_ops::plan_file::read(file)?;
    let hosts = ctx.store.list_hosts().await?;
    if hosts.is_empty() {
        writeln!(
            out,
            "{}: the file reads well; its targets were not matched (no hosts registered{})",
            file.display(),
            if ctx.persistent {
                ""
            } else {
                "; pass --database-url"
            }
        )?;
        return Ok(());
    }
    let plan = pf.check(&hosts, &[])?;
    if ctx.g.json {
        serde_json::to_writer_pretty(&mut *out, &plan)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{}: valid; {} host(s), mode {}, maxConcurrent {}, minHostsOnline {}, approval {}",
            file.display(),
            plan.targets.len(),
            plan.policy.update_mode,
            plan.policy.max_concurrent,
            plan.policy.min_hosts_online,
            if plan.approval_required {
                "required"
            } else {
                "not required"
            }
        )?;
    }
    Ok(())
}

/// A stored plan, or a plan file made into a plan that is never stored.
async fn plan_and_targets(
    ctx: &Ctx,
    reference: &str,
) -> anyhow::Result<(
    Plan,
    Vec<firmflow_core::model::PlanTarget>,
    Vec<firmflow_core::model::Artifact>,
)> {
    let path = PathBuf::from(reference);
    if firmflow_ops::PlanFormat::from_path(&path).is_some() && path.exists() {
        let (_, np) = load_plan_file(ctx, &path).await?;
        let plan = Plan {
            id: PlanId::new(),
            name: np.name.clone(),
            policy: np.policy.clone(),
            status: PlanStatus::Draft,
            maintenance_window: np.maintenance_window.clone(),
            approval_required: np.approval_required,
            approved_by: None,
            created_by: np.created_by,
            idempotency_key: np.idempotency_key.clone(),
            status_reason: None,
            created_at: Utc::now(),
        };
        return Ok((plan, np.targets, np.artifacts));
    }
    let plan = find_plan(ctx, reference).await?;
    let targets = ctx.store.plan_targets(plan.id).await?;
    let artifacts = ctx.store.plan_artifacts(plan.id).await?;
    Ok((plan, targets, artifacts))
}

/// `plan dry-run FILE|PLAN`: reads the BMCs, changes nothing.
pub async fn cmd_dry_run(
    ctx: &Ctx,
    reference: &str,
    parallel: usize,
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    let (plan, targets, artifacts) = plan_and_targets(ctx, reference).await?;
    let hosts = crate::context::hosts_by_id(
        ctx.store.as_ref(),
        &targets.iter().map(|t| t.host_id).collect::<Vec<_>>(),
    )
    .await?;
    let catalog = match &plan.policy.catalog_url {
        Some(c)
            if plan.policy.update_mode == firmflow_core::model::UpdateMode::LatestFromCatalog =>
        {
            Some((crate::inventory::load_catalog(c).await?, c.clone()))
        }
        _ => None,
    };
    let reads = crate::inventory::read_all(ctx, hosts.clone(), parallel).await?;
    let (facts, errors) = crate::inventory::facts(&reads);
    let locator = catalog
        .as_ref()
        .map(|(_, url)| PackageLocator::new(url.clone()));
    // Cluster members outside the plan count as online.
    let all = ctx.store.list_hosts().await?;
    let mut others = std::collections::BTreeMap::new();
    for h in &all {
        if let Some(k) = h.cluster_key()
            && !targets.iter().any(|t| t.host_id == h.id)
        {
            others
                .entry(k)
                .or_insert_with(std::collections::BTreeSet::new)
                .insert(h.host_moid.clone().unwrap_or_else(|| h.id.to_string()));
        }
    }
    let dr = dry_run(&DryRunInput {
        plan: &plan,
        targets: &targets,
        hosts: &facts,
        artifacts: &artifacts,
        catalog: catalog.as_ref().map(|(i, _)| i.as_ref()),
        locator: locator.as_ref(),
        other_cluster_members: others,
        start: plan
            .maintenance_window
            .as_ref()
            .map(|w| w.start.max(Utc::now()))
            .unwrap_or_else(Utc::now),
        durations: DurationModel::default(),
    });
    if ctx.g.json {
        serde_json::to_writer_pretty(
            &mut *out,
            &serde_json::json!({
                "dry_run": dr,
                "unreadable": errors.iter().map(|(h, e)| serde_json::json!({"host": h, "error": e})).collect::<Vec<_>>(),
            }),
        )?;
        writeln!(out)?;
    } else {
        write!(out, "{}", dr.to_text())?;
        for (h, e) in &errors {
            writeln!(out, "error: {h}: cannot read the BMC: {e}")?;
        }
        writeln!(out, "(dry run: nothing was changed)")?;
    }
    Ok(errors.is_empty() && dr.failing_hosts == 0)
}

/// `plan approve|pause|cancel PLAN`.
pub async fn cmd_move(
    ctx: &Ctx,
    reference: &str,
    op: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    ctx.require_persistent(&format!("plan {op}"))?;
    let plan = find_plan(ctx, reference).await?;
    let exec = ctx.executor_for_hosts(&[], &[]).await?;
    let (name, who) = ctx.operator();
    match op {
        "approve" => exec.approve(plan.id, who).await?,
        "pause" => exec.pause(plan.id, Some(who)).await?,
        "cancel" => exec.cancel(plan.id, Some(who)).await?,
        other => return Err(usage(format!("unknown plan operation {other}"))),
    }
    let p = ctx.store.get_plan(plan.id).await?;
    writeln!(
        out,
        "plan {} {:?}: {} (by {name}){}",
        p.id,
        p.name,
        p.status,
        match op {
            "approve" => format!("; next: firmflow plan start {}", p.id),
            "pause" => "; hosts in flight finish their run, no new host starts".into(),
            "cancel" => "; hosts in flight stop at their next safe point".into(),
            _ => String::new(),
        }
    )?;
    Ok(())
}

/// `plan start|resume PLAN [--detach]`: drives it here unless detached.
pub async fn cmd_start(
    ctx: &Ctx,
    reference: &str,
    resume: bool,
    detach: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<bool> {
    ctx.require_persistent(if resume { "plan resume" } else { "plan start" })?;
    let plan = find_plan(ctx, reference).await?;
    let exec = ctx.executor(&[&plan]).await?;
    let (_, who) = ctx.operator();
    match (plan.status, resume) {
        // Already running (another process, or one that was killed): drive it.
        (PlanStatus::Running, _) => {}
        (PlanStatus::Paused, _) => exec.resume(plan.id, Some(who)).await?,
        (_, true) => {
            return Err(refused(format!(
                "plan {} is {}: only a paused plan can be resumed",
                plan.id, plan.status
            )));
        }
        (PlanStatus::Draft, false) if plan.approval_required => {
            return Err(refused(format!(
                "plan {} requires approval: firmflow plan approve {}",
                plan.id, plan.id
            )));
        }
        (_, false) => exec.start(plan.id, Some(who)).await?,
    }
    if detach {
        writeln!(
            out,
            "plan {} is running; a firmflow process must drive it (firmflowd, or \
             `firmflow plan start {}` without --detach); follow it with `firmflow plan status {} --watch`",
            plan.id, plan.id, plan.id
        )?;
        return Ok(true);
    }
    writeln!(
        err,
        "driving plan {} {:?} (Ctrl-C pauses at a safe point)",
        plan.id, plan.name
    )?;
    let o = watch::drive(ctx, &exec, plan.id, err).await?;
    watch::summary(ctx, &o, out).await?;
    Ok(o.all_completed())
}

/// `plan status PLAN [--watch]`.
pub async fn cmd_status(
    ctx: &Ctx,
    reference: &str,
    follow: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<bool> {
    let plan = find_plan(ctx, reference).await?;
    if follow && !plan.status.is_final() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let sig = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = tx.send(());
            }
        });
        let o = watch::follow(ctx, plan.id, || rx.try_recv().is_ok(), err).await?;
        sig.abort();
        status_table(ctx, &o, out).await?;
        return Ok(o.all_completed());
    }
    let runs = ctx.store.list_runs(plan.id).await?;
    let o = Outcome {
        plan,
        runs,
        interrupted: false,
    };
    status_table(ctx, &o, out).await?;
    // A snapshot is not a verdict: only --watch waits for one.
    Ok(true)
}

async fn status_table(ctx: &Ctx, o: &Outcome, out: &mut dyn Write) -> anyhow::Result<()> {
    if ctx.g.json {
        serde_json::to_writer_pretty(
            &mut *out,
            &serde_json::json!({"plan": o.plan, "runs": o.runs}),
        )?;
        writeln!(out)?;
        return Ok(());
    }
    let hosts = watch::names(ctx, &o.runs).await;
    let p = &o.plan;
    writeln!(
        out,
        "plan {} {:?}: {}{} — {} host(s), mode {}, maxConcurrent {}, minHostsOnline {}",
        p.id,
        p.name,
        p.status,
        p.status_reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default(),
        o.runs.len(),
        p.policy.update_mode,
        p.policy.max_concurrent,
        p.policy.min_hosts_online
    )?;
    let mut t = Table::new(&["HOST", "STATE", "PHASE", "%", "RETRIES", "MESSAGE"]);
    let mut runs = o.runs.clone();
    runs.sort_by_key(|r| hosts.get(&r.host_id).map(|h| h.fqdn.clone()));
    for r in &runs {
        t.row(vec![
            hosts
                .get(&r.host_id)
                .map(|h| h.fqdn.clone())
                .unwrap_or_else(|| r.host_id.to_string()),
            r.state.to_string(),
            r.ctx.progress.phase.as_str().into(),
            r.ctx.progress.percentage.to_string(),
            r.attempts.to_string(),
            match (&r.state, &r.last_error) {
                (RunState::Completed, _) => r.ctx.progress.message.clone(),
                (_, Some(e)) => e.clone(),
                _ => r.ctx.progress.message.clone(),
            },
        ]);
    }
    write!(out, "{}", t.render())?;
    Ok(())
}

/// `plan list`.
pub async fn cmd_list(ctx: &Ctx, out: &mut dyn Write) -> anyhow::Result<()> {
    let plans = ctx.store.list_plans().await?;
    if ctx.g.json {
        serde_json::to_writer_pretty(&mut *out, &plans)?;
        writeln!(out)?;
        return Ok(());
    }
    if plans.is_empty() {
        writeln!(out, "no plans")?;
        return Ok(());
    }
    let mut t = Table::new(&["ID", "NAME", "STATUS", "HOSTS", "DONE", "FAILED", "CREATED"]);
    for p in &plans {
        let c = ctx.store.run_counts(p.id).await?;
        t.row(vec![
            p.id.to_string(),
            p.name.clone(),
            p.status.to_string(),
            c.total().to_string(),
            c.completed.to_string(),
            c.failed.to_string(),
            p.created_at.format("%Y-%m-%d %H:%M").to_string(),
        ]);
    }
    write!(out, "{}", t.render())?;
    Ok(())
}

/// `firmflow run FILE`: create (or find again), approve with `--yes`,
/// start, and drive to the end in the foreground.
pub async fn cmd_run(
    ctx: &Ctx,
    file: &Path,
    hosts_file: Option<&Path>,
    yes: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<bool> {
    if let Some(hf) = hosts_file {
        let entries = firmflow_ops::hosts::read_file(hf)?;
        let (r, _) = crate::hosts_cmd::import_entries(ctx.store.as_ref(), &entries).await?;
        if !r.added.is_empty() || !r.updated.is_empty() {
            writeln!(
                err,
                "{}: {} host(s) added, {} updated",
                hf.display(),
                r.added.len(),
                r.updated.len()
            )?;
        }
    }
    let (pf, np) = load_plan_file(ctx, file).await?;
    let c = create(ctx, &pf, np).await?;
    let plan = c.plan;
    if !c.created {
        writeln!(
            err,
            "found plan {} for this file ({}): continuing it",
            plan.id, plan.status
        )?;
    } else {
        writeln!(err, "created plan {} {:?}", plan.id, plan.name)?;
    }
    let exec: Executor = ctx.executor(&[&plan]).await?;
    let (name, who) = ctx.operator();
    match plan.status {
        PlanStatus::Draft if plan.approval_required && !yes => {
            return Err(refused(format!(
                "plan {} requires approval: pass --yes to approve it as {name}, or \
                 `firmflow plan approve {}`{}",
                plan.id,
                plan.id,
                if ctx.persistent {
                    ""
                } else {
                    " (needs --database-url)"
                }
            )));
        }
        PlanStatus::Draft if plan.approval_required => {
            exec.approve(plan.id, who).await?;
            writeln!(err, "approved by {name}")?;
            exec.start(plan.id, Some(who)).await?;
        }
        PlanStatus::Draft | PlanStatus::Approved => exec.start(plan.id, Some(who)).await?,
        PlanStatus::Paused => {
            exec.resume(plan.id, Some(who)).await?;
            writeln!(err, "resumed")?;
        }
        PlanStatus::Running => {}
        s if s.is_final() => {
            let runs = ctx.store.list_runs(plan.id).await?;
            let o = Outcome {
                plan,
                runs,
                interrupted: false,
            };
            writeln!(
                err,
                "this plan already ended ({s}); edit the file or set idempotency_key to run a new campaign"
            )?;
            watch::summary(ctx, &o, out).await?;
            return Ok(o.all_completed());
        }
        _ => {}
    }
    writeln!(
        err,
        "driving plan {} (Ctrl-C pauses at a safe point)",
        plan.id
    )?;
    let o = watch::drive(ctx, &exec, plan.id, err)
        .await
        .context("driving the campaign")?;
    watch::summary(ctx, &o, out).await?;
    Ok(o.all_completed())
}
