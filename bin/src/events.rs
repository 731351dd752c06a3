//! `firmflow events [--plan P] [--host H] [--follow]`: the audit trail,
//! oldest first; `--follow` keeps printing new events until Ctrl-C.

use crate::context::Ctx;
use crate::plans::find_plan;
use firmflow_core::model::SystemEvent;
use firmflow_core::store::EventFilter;
use std::io::Write;
use std::time::Duration;

fn line(e: &SystemEvent) -> String {
    format!(
        "{} {:>6} {:<8} {:<24} {}",
        e.created_at.format("%Y-%m-%d %H:%M:%S%.3f"),
        e.seq,
        e.event.severity.as_str(),
        e.event.event_type.as_str(),
        e.event.message
    )
}

/// Prints events; with `follow`, polls for new ones until Ctrl-C.
pub async fn cmd_events(
    ctx: &Ctx,
    plan: Option<&str>,
    host: Option<&str>,
    limit: Option<usize>,
    follow: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut filter = EventFilter::default();
    if let Some(p) = plan {
        filter.plan_id = Some(find_plan(ctx, p).await?.id);
    }
    if let Some(h) = host {
        filter.host_id = Some(ctx.find_host(h).await?.id);
    }
    let mut events = ctx.store.list_events(&filter).await?;
    if let Some(n) = limit {
        // The last n, still oldest first.
        let skip = events.len().saturating_sub(n);
        events.drain(..skip);
    }
    let print = |out: &mut dyn Write, evs: &[SystemEvent]| -> anyhow::Result<()> {
        for e in evs {
            if ctx.g.json {
                // One object per line, so a follower can stream it.
                writeln!(out, "{}", serde_json::to_string(e)?)?;
            } else {
                writeln!(out, "{}", line(e))?;
            }
        }
        out.flush()?;
        Ok(())
    };
    print(out, &events)?;
    if !follow {
        return Ok(());
    }
    let mut last = events.last().map(|e| e.seq);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let every = match ctx.timing {
        crate::config::Timing::Sim => Duration::from_millis(200),
        crate::config::Timing::Real => Duration::from_secs(1),
    };
    loop {
        tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            _ = tokio::time::sleep(every) => {}
        }
        let mut f = filter.clone();
        f.after_seq = last.or(Some(0));
        let new = ctx.store.list_events(&f).await?;
        if let Some(e) = new.last() {
            last = Some(e.seq);
        }
        print(out, &new)?;
    }
}
