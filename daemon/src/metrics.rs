//! `/metrics` in the Prometheus text format. What the daemon can see
//! without changing the engine: runs by state (read from the store at each
//! scrape), phase durations (from the executor's progress stream), leases
//! held by this daemon, HTTP requests and their latency, SSE events sent,
//! and, with PostgreSQL, the store's own claim latency and fenced writes;
//! BMC operations by outcome, their latency and the sessions open
//! ([`crate::bmc_metrics`]).

use crate::bmc_metrics::BmcMetrics;
use crate::store_metrics::StoreMetrics;
use firmflow_core::executor::ProgressEvent;
use firmflow_core::model::{Phase, RunId};
use prometheus::{
    Encoder as _, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};
use std::collections::HashMap;
use std::time::Instant;

/// The daemon's metrics.
pub struct Metrics {
    registry: Registry,
    /// Runs by state (all plans).
    pub runs: IntGaugeVec,
    /// Phase durations.
    pub phase_seconds: HistogramVec,
    /// Leases this daemon holds.
    pub leases_held: IntGauge,
    /// HTTP requests by route, method and status.
    pub http_requests: IntCounterVec,
    /// HTTP latency by route.
    pub http_seconds: HistogramVec,
    /// SSE events sent.
    pub sse_events: IntCounterVec,
    /// Store figures (PostgreSQL): claims, fenced writes, claim latency quantiles.
    pub store: GaugeVec,
    /// BMC operations, their latency and sessions open ([`crate::bmc_metrics`]).
    pub bmc: BmcMetrics,
    /// Store write latency by operation ([`crate::store_metrics`]).
    pub store_writes: StoreMetrics,
}

fn phase_name(p: &Phase) -> String {
    p.as_str().to_string()
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("firmflowd".into()), None)?;
        let runs = IntGaugeVec::new(Opts::new("runs", "Host runs by state"), &["state"])?;
        let phase_seconds = HistogramVec::new(
            HistogramOpts::new("phase_duration_seconds", "Time runs spend in each phase").buckets(
                vec![0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0],
            ),
            &["phase"],
        )?;
        let leases_held = IntGauge::new("leases_held", "Run leases this daemon holds")?;
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "API requests"),
            &["route", "method", "status"],
        )?;
        let http_seconds = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "API latency")
                .buckets(vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0]),
            &["route"],
        )?;
        let sse_events = IntCounterVec::new(
            Opts::new("sse_events_total", "Events sent on live streams"),
            &["kind"],
        )?;
        let store = GaugeVec::new(
            Opts::new(
                "store",
                "Store figures since start (PostgreSQL): claims, fenced_writes, \
                 claim_latency_p50_seconds, claim_latency_p99_seconds",
            ),
            &["figure"],
        )?;
        registry.register(Box::new(runs.clone()))?;
        registry.register(Box::new(phase_seconds.clone()))?;
        registry.register(Box::new(leases_held.clone()))?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_seconds.clone()))?;
        registry.register(Box::new(sse_events.clone()))?;
        registry.register(Box::new(store.clone()))?;
        let bmc = BmcMetrics::register(&registry)?;
        let store_writes = StoreMetrics::register(&registry)?;
        Ok(Self {
            registry,
            runs,
            phase_seconds,
            leases_held,
            http_requests,
            http_seconds,
            sse_events,
            store,
            bmc,
            store_writes,
        })
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

/// Follows the progress stream and observes how long each run stayed in
/// each phase (a phase ends when the run's next message names another).
pub struct PhaseTimer {
    current: HashMap<RunId, (String, Instant)>,
}

impl Default for PhaseTimer {
    fn default() -> Self {
        Self::new()
    }
}

impl PhaseTimer {
    /// Empty.
    pub fn new() -> Self {
        Self {
            current: HashMap::new(),
        }
    }

    /// Records one progress message at `now`.
    pub fn observe(&mut self, m: &Metrics, ev: &ProgressEvent, now: Instant) {
        let phase = phase_name(&ev.phase);
        let done = ev.state.is_final();
        match self.current.get(&ev.run_id) {
            Some((p, since)) if *p != phase || done => {
                m.phase_seconds
                    .with_label_values(&[p.as_str()])
                    .observe(now.duration_since(*since).as_secs_f64());
                if done {
                    self.current.remove(&ev.run_id);
                } else {
                    self.current.insert(ev.run_id, (phase, now));
                }
            }
            Some(_) => {}
            None if !done => {
                self.current.insert(ev.run_id, (phase, now));
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firmflow_core::model::{HostId, PlanId, RunState};
    use std::time::Duration;

    #[test]
    fn phases_are_timed_until_the_next_phase() {
        let m = Metrics::new().unwrap();
        let mut t = PhaseTimer::new();
        let run = RunId::new();
        let ev = |phase: Phase, state: RunState| ProgressEvent {
            run_id: run,
            plan_id: PlanId::new(),
            host_id: HostId::new(),
            state,
            phase,
            percentage: 0,
            message: String::new(),
        };
        let t0 = Instant::now();
        t.observe(&m, &ev(Phase::Preflight, RunState::Running), t0);
        t.observe(
            &m,
            &ev(Phase::Install, RunState::Running),
            t0 + Duration::from_secs(2),
        );
        t.observe(
            &m,
            &ev(Phase::Install, RunState::Completed),
            t0 + Duration::from_secs(5),
        );
        let text = m.render();
        assert!(
            text.contains("firmflowd_phase_duration_seconds_sum{phase=\"preflight\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("firmflowd_phase_duration_seconds_sum{phase=\"install\"} 3"),
            "{text}"
        );
    }
}
