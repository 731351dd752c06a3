//! Fault soak, long form (issue 13): 1,000 simulated iDRACs over HTTPS, a
//! share of them with each fault `firmflow-sim` injects, the rest clean;
//! prints the confusion table (injected fault × final outcome), the
//! failure-budget plan's result, panics, unfinished runs and time. The
//! harness is `tests/src/fault_soak.rs`, shared with the short test.
//!
//! `cargo bench -p firmflow-tests --bench fault_soak`. Environment: `HOSTS`
//! (1000), `PERCENT` (8 per fault), `MAX_CONCURRENT` (100), `SEED` (13).

use firmflow_tests::fault_soak::{Injected, SoakConfig, soak};
use std::time::Duration;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cfg = SoakConfig {
        hosts: env_u64("HOSTS", 1000) as usize,
        percent_per_fault: env_u64("PERCENT", 8) as usize,
        max_concurrent: env_u64("MAX_CONCURRENT", 100) as u32,
        seed: env_u64("SEED", 13),
        timeout: Duration::from_secs(1800),
    };
    println!("fault soak: {cfg:?}");
    let r = rt.block_on(soak(cfg));
    println!("{}", r.table());
    // The hosts whose outcome differs from most of their row, in full.
    for f in Injected::FAULTS {
        let rows = r.of(f);
        let mut by: std::collections::BTreeMap<String, usize> = Default::default();
        for o in &rows {
            *by.entry(o.column()).or_default() += 1;
        }
        let common = by.iter().max_by_key(|(_, n)| **n).map(|(c, _)| c.clone());
        for o in rows.iter().filter(|o| Some(o.column()) != common) {
            println!("outlier {}: {o:?}", f.label());
        }
    }
    println!(
        "big plan: {:?} in {:.1} s | budget plan ({} hosts, {} failing first, maxFailures {}, \
         maxConcurrent {}): {:?} {:?} | panics {} | unfinished runs {}",
        r.status,
        r.elapsed.as_secs_f64(),
        r.budget.hosts,
        r.budget.failing,
        r.budget.max_failures,
        r.budget.max_concurrent,
        r.budget.status,
        r.budget.states,
        r.panics,
        r.stuck
    );
}
