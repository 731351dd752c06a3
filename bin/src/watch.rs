//! Following a campaign: progress bars read from the store (so `plan status
//! --watch` in one terminal follows what `plan start` or a daemon drives in
//! another), and driving one in the foreground with an executor of this
//! process, where Ctrl-C pauses the plan at a safe point.

use crate::context::Ctx;
use crate::table::Table;
use firmflow_core::executor::Executor;
use firmflow_core::model::{Host, HostId, HostRun, Plan, PlanId, RunState};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::time::Duration;

/// How a followed campaign ended.
#[derive(Debug)]
pub struct Outcome {
    /// The plan at the end.
    pub plan: Plan,
    /// Its runs at the end.
    pub runs: Vec<HostRun>,
    /// Ctrl-C paused it.
    pub interrupted: bool,
}

impl Outcome {
    /// Whether every host completed.
    pub fn all_completed(&self) -> bool {
        !self.runs.is_empty() && self.runs.iter().all(|r| r.state == RunState::Completed)
    }
}

/// Host names by id, for display.
pub async fn names(ctx: &Ctx, runs: &[HostRun]) -> HashMap<HostId, Host> {
    let mut m = HashMap::new();
    for r in runs {
        if let Ok(h) = ctx.store.get_host(r.host_id).await {
            m.insert(r.host_id, h);
        }
    }
    m
}

fn poll_every(ctx: &Ctx) -> Duration {
    match ctx.timing {
        crate::config::Timing::Sim => Duration::from_millis(200),
        crate::config::Timing::Real => Duration::from_secs(2),
    }
}

/// Live bars: one overall, one per host while it runs; a line per host
/// when it finishes.
struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    per_host: BTreeMap<HostId, ProgressBar>,
    done: BTreeMap<HostId, RunState>,
    style: ProgressStyle,
    plain: bool,
    last_state: HashMap<HostId, (RunState, String)>,
}

impl Bars {
    fn new(visible: bool, total: usize) -> Self {
        let multi = MultiProgress::with_draw_target(if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let overall = multi.add(ProgressBar::new(total as u64));
        overall.set_style(
            ProgressStyle::with_template(
                "{prefix:<28} [{bar:30.green/white}] {pos}/{len} hosts {elapsed:>4} ETA {eta:>4} {wide_msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        overall.set_prefix("campaign");
        let style = ProgressStyle::with_template(
            "{prefix:<28} [{bar:30.cyan/blue}] {pos:>3}% {elapsed:>4} {wide_msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        Self {
            multi,
            overall,
            per_host: BTreeMap::new(),
            done: BTreeMap::new(),
            style,
            plain: !visible,
            last_state: HashMap::new(),
        }
    }

    fn update(&mut self, runs: &[HostRun], hosts: &HashMap<HostId, Host>, err: &mut dyn Write) {
        let name = |id: &HostId| {
            hosts
                .get(id)
                .map(|h| h.fqdn.clone())
                .unwrap_or_else(|| id.to_string())
        };
        let mut finished = 0;
        let mut retries = 0;
        for r in runs {
            retries += r.attempts;
            if r.state.is_final() {
                finished += 1;
                if let std::collections::btree_map::Entry::Vacant(v) = self.done.entry(r.host_id) {
                    v.insert(r.state);
                    if let Some(b) = self.per_host.remove(&r.host_id) {
                        b.finish_and_clear();
                        self.multi.remove(&b);
                    }
                    let took = r
                        .started_at
                        .zip(r.completed_at)
                        .map(|(a, b)| {
                            format!(" in {:.1} s", (b - a).num_milliseconds() as f64 / 1000.0)
                        })
                        .unwrap_or_default();
                    let line = match (&r.state, &r.last_error) {
                        (RunState::Completed, _) => {
                            format!("✓ {} completed{took}", name(&r.host_id))
                        }
                        (s, Some(e)) => format!("✗ {} {s}: {e}", name(&r.host_id)),
                        (s, None) => format!("✗ {} {s}", name(&r.host_id)),
                    };
                    if self.plain {
                        let _ = writeln!(err, "{line}");
                    } else {
                        let _ = self.multi.println(line);
                    }
                }
                continue;
            }
            let msg = match r.state {
                RunState::Retrying => format!(
                    "retrying (attempt {}): {}",
                    r.attempts + 1,
                    r.last_error.as_deref().unwrap_or(&r.ctx.progress.message)
                ),
                _ => format!(
                    "{}: {}",
                    r.ctx.progress.phase.as_str(),
                    r.ctx.progress.message
                ),
            };
            if self.plain {
                let key = (r.state, r.ctx.progress.phase.as_str().to_string());
                if r.state != RunState::Pending && self.last_state.get(&r.host_id) != Some(&key) {
                    let _ = writeln!(err, "  {} {} {}", name(&r.host_id), r.state, msg);
                    self.last_state.insert(r.host_id, key);
                }
                continue;
            }
            if r.state == RunState::Pending {
                continue;
            }
            let b = self.per_host.entry(r.host_id).or_insert_with(|| {
                let b = self.multi.add(ProgressBar::new(100));
                b.set_style(self.style.clone());
                b.set_prefix(name(&r.host_id));
                b
            });
            b.set_position(u64::from(r.ctx.progress.percentage));
            b.set_message(msg);
        }
        self.overall.set_position(finished as u64);
        self.overall.set_message(if retries > 0 {
            format!("{retries} retried attempt(s)")
        } else {
            String::new()
        });
    }

    fn finish(&mut self) {
        for (_, b) in std::mem::take(&mut self.per_host) {
            b.finish_and_clear();
        }
        self.overall.finish_and_clear();
        let _ = self.multi.clear();
    }
}

/// Follows a plan in the store until it is final (or `stop` fires).
pub async fn follow(
    ctx: &Ctx,
    plan: PlanId,
    mut stop: impl FnMut() -> bool,
    err: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let runs = ctx.store.list_runs(plan).await?;
    let hosts = names(ctx, &runs).await;
    let mut bars = Bars::new(ctx.progress(), runs.len());
    loop {
        let p = ctx.store.get_plan(plan).await?;
        let runs = ctx.store.list_runs(plan).await?;
        bars.update(&runs, &hosts, err);
        // A final plan may still have a run finishing its cleanup.
        let settled = runs.iter().all(|r| r.state.is_final())
            || (p.status.is_final() && !runs.iter().any(|r| r.state == RunState::Running));
        if settled && p.status.is_final() {
            bars.finish();
            return Ok(Outcome {
                plan: p,
                runs,
                interrupted: false,
            });
        }
        if stop() {
            bars.finish();
            return Ok(Outcome {
                plan: p,
                runs,
                interrupted: true,
            });
        }
        tokio::time::sleep(poll_every(ctx)).await;
    }
}

/// Drives a running plan with an executor of this process until it ends.
/// Ctrl-C pauses the plan, lets in-flight hosts reach a safe point (never
/// in the middle of an install), releases them, and returns; a second
/// Ctrl-C stops at once (leases then expire and a later run takes over).
pub async fn drive(
    ctx: &Ctx,
    exec: &Executor,
    plan: PlanId,
    err: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let handle = exec.spawn();
    exec.wake();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let signals = tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if tx.send(()).is_err() {
                break;
            }
        }
    });
    let mut interrupted = false;
    let outcome = follow(
        ctx,
        plan,
        || {
            if rx.try_recv().is_ok() {
                interrupted = true;
            }
            interrupted
        },
        err,
    )
    .await;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            handle.shutdown().await;
            signals.abort();
            return Err(e);
        }
    };
    if outcome.interrupted {
        let (_, who) = ctx.operator();
        let paused = exec.pause(plan, Some(who)).await.is_ok();
        let _ = writeln!(
            err,
            "\ninterrupted: {} plan {plan}; letting hosts in flight reach a safe point \
             (Ctrl-C again to stop at once)…",
            if paused { "paused" } else { "leaving" }
        );
        let shutdown = handle.shutdown();
        tokio::pin!(shutdown);
        tokio::select! {
            _ = &mut shutdown => {}
            _ = rx.recv() => {
                let _ = writeln!(err, "stopping at once; leases expire and the next run takes over");
            }
        }
        signals.abort();
        let p = ctx.store.get_plan(plan).await?;
        let runs = ctx.store.list_runs(plan).await?;
        return Ok(Outcome {
            plan: p,
            runs,
            interrupted: true,
        });
    }
    handle.shutdown().await;
    signals.abort();
    Ok(outcome)
}

/// The end-of-campaign table and the line that says how it ended.
pub async fn summary(ctx: &Ctx, o: &Outcome, out: &mut dyn Write) -> anyhow::Result<()> {
    let hosts = names(ctx, &o.runs).await;
    if ctx.g.json {
        serde_json::to_writer_pretty(
            &mut *out,
            &serde_json::json!({"plan": o.plan, "runs": o.runs, "interrupted": o.interrupted}),
        )?;
        writeln!(out)?;
        return Ok(());
    }
    let mut t = Table::new(&["HOST", "STATE", "CHANGES", "RETRIES", "DURATION", "ERROR"]);
    let mut runs = o.runs.clone();
    runs.sort_by_key(|r| hosts.get(&r.host_id).map(|h| h.fqdn.clone()));
    for r in &runs {
        let changes: Vec<String> = r
            .ctx
            .results
            .components
            .iter()
            .map(|c| {
                format!(
                    "{} {} → {}{}",
                    c.name.split(',').next().unwrap_or(&c.name).trim(),
                    c.from_version.as_deref().unwrap_or("?"),
                    c.to_version.as_deref().unwrap_or("-"),
                    if c.outcome == "installed" {
                        String::new()
                    } else {
                        format!(" ({})", c.outcome)
                    }
                )
            })
            .collect();
        t.row(vec![
            hosts
                .get(&r.host_id)
                .map(|h| h.fqdn.clone())
                .unwrap_or_else(|| r.host_id.to_string()),
            r.state.to_string(),
            if changes.is_empty() {
                "-".into()
            } else {
                changes.join(", ")
            },
            r.attempts.to_string(),
            r.started_at
                .zip(r.completed_at)
                .map(|(a, b)| format!("{:.1} s", (b - a).num_milliseconds() as f64 / 1000.0))
                .unwrap_or_else(|| "-".into()),
            if r.state == RunState::Completed {
                String::new()
            } else {
                r.last_error.clone().unwrap_or_default()
            },
        ]);
    }
    write!(out, "{}", t.render())?;
    let count = |s: RunState| o.runs.iter().filter(|r| r.state == s).count();
    writeln!(
        out,
        "plan {} {}: {} completed, {} failed, {} need an operator's attention, {} cancelled, {} not finished{}",
        o.plan.id,
        o.plan.status,
        count(RunState::Completed),
        count(RunState::Failed),
        count(RunState::NeedsAttention),
        count(RunState::Cancelled),
        o.runs.iter().filter(|r| !r.state.is_final()).count(),
        o.plan
            .status_reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    )?;
    if o.interrupted && !o.plan.status.is_final() {
        if ctx.persistent {
            writeln!(
                out,
                "resume with: firmflow plan resume {}   (or run the same command again)",
                o.plan.id
            )?;
        } else {
            writeln!(
                out,
                "without --database-url this campaign's state ends with this process; \
                 a new run skips components already at their target version"
            )?;
        }
    }
    Ok(())
}
