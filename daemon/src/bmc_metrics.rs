//! BMC figures for `/metrics`: a [`MeteredConnector`] wraps the fleet's
//! connector and every driver it hands out, so each driver operation (one
//! or more HTTP requests or racadm commands: a login, an inventory read, a
//! job poll, a submission) is counted by operation, host kind and outcome
//! (`ok` or the error kind), timed, and the sessions open are gauged.
//!
//! The wrapper only observes: every call is forwarded unchanged, with its
//! arguments and its result, so the engine's behaviour (and its crash
//! safety) is the same with or without metrics. Labels are bounded: the
//! host kind of an unknown management kind is `other`, never the free text,
//! and no label names a host (10,000 hosts would be 10,000 series).

use async_trait::async_trait;
use firmflow_core::bmc::{
    BmcConnector, BmcDriver, Error, ErrorKind, FirmwareComponent, Inventory, JobQuery, JobSearch,
    JobStatus, PowerState, Readiness, ResetKind, SystemInfo, UpdateOptions, UpdateStart,
};
use firmflow_core::model::{Host, JobHandle, MgmtKind, Package};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// The BMC series.
#[derive(Clone)]
pub struct BmcMetrics {
    /// Driver operations by operation, host kind and outcome.
    pub operations: IntCounterVec,
    /// Driver operation latency by operation and host kind.
    pub seconds: HistogramVec,
    /// Sessions open (connected drivers not yet closed) by host kind.
    pub sessions_open: IntGaugeVec,
}

impl BmcMetrics {
    /// Creates the series and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let operations = IntCounterVec::new(
            Opts::new(
                "bmc_operations_total",
                "BMC driver operations (each one or more requests to the BMC) by outcome: \
                 ok, or the error kind (unreachable, timeout, busy, service_unavailable, \
                 session_limit, authentication, tls, package_rejected, not_supported, \
                 job_failed, not_found, invalid_response, other)",
            ),
            &["operation", "host_kind", "outcome"],
        )?;
        let seconds = HistogramVec::new(
            HistogramOpts::new(
                "bmc_operation_duration_seconds",
                "BMC driver operation latency",
            )
            .buckets(vec![
                0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 1800.0,
            ]),
            &["operation", "host_kind"],
        )?;
        let sessions_open = IntGaugeVec::new(
            Opts::new(
                "bmc_sessions_open",
                "BMC sessions this daemon holds open (connected, not yet logged out)",
            ),
            &["host_kind"],
        )?;
        registry.register(Box::new(operations.clone()))?;
        registry.register(Box::new(seconds.clone()))?;
        registry.register(Box::new(sessions_open.clone()))?;
        Ok(Self {
            operations,
            seconds,
            sessions_open,
        })
    }
}

fn host_kind(kind: &MgmtKind) -> &'static str {
    match kind {
        MgmtKind::Idrac => "idrac",
        MgmtKind::Redfish => "redfish",
        MgmtKind::Racadm => "racadm",
        MgmtKind::Ipmi => "ipmi",
        MgmtKind::Other(_) => "other",
    }
}

fn outcome(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Unreachable => "unreachable",
        ErrorKind::Timeout => "timeout",
        ErrorKind::Busy => "busy",
        ErrorKind::ServiceUnavailable => "service_unavailable",
        ErrorKind::SessionLimit => "session_limit",
        ErrorKind::Authentication => "authentication",
        ErrorKind::Tls => "tls",
        ErrorKind::PackageRejected => "package_rejected",
        ErrorKind::NotSupported => "not_supported",
        ErrorKind::JobFailed => "job_failed",
        ErrorKind::NotFound => "not_found",
        ErrorKind::InvalidResponse => "invalid_response",
        ErrorKind::Other => "other",
    }
}

impl BmcMetrics {
    async fn observe<T>(
        &self,
        operation: &'static str,
        kind: &'static str,
        call: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let started = Instant::now();
        let result = call.await;
        let label = match &result {
            Ok(_) => "ok",
            Err(e) => outcome(&e.kind),
        };
        self.operations
            .with_label_values(&[operation, kind, label])
            .inc();
        self.seconds
            .with_label_values(&[operation, kind])
            .observe(started.elapsed().as_secs_f64());
        result
    }
}

/// A connector whose drivers are metered.
pub struct MeteredConnector {
    inner: Arc<dyn BmcConnector>,
    metrics: BmcMetrics,
}

impl MeteredConnector {
    /// Meters `inner`'s connections and drivers.
    pub fn new(inner: Arc<dyn BmcConnector>, metrics: BmcMetrics) -> Self {
        Self { inner, metrics }
    }
}

#[async_trait]
impl BmcConnector for MeteredConnector {
    async fn connect(&self, host: &Host) -> Result<Arc<dyn BmcDriver>, Error> {
        let kind = host_kind(&host.mgmt_kind);
        let driver = self
            .metrics
            .observe("connect", kind, self.inner.connect(host))
            .await?;
        self.metrics.sessions_open.with_label_values(&[kind]).inc();
        Ok(Arc::new(MeteredDriver {
            inner: driver,
            metrics: self.metrics.clone(),
            kind,
            open: AtomicBool::new(true),
        }))
    }
}

/// A driver whose operations are metered.
struct MeteredDriver {
    inner: Arc<dyn BmcDriver>,
    metrics: BmcMetrics,
    kind: &'static str,
    /// Until `close` (or drop, for a driver dropped without it) the session
    /// counts as open; whichever comes first takes it off the gauge.
    open: AtomicBool,
}

impl MeteredDriver {
    fn session_ended(&self) {
        if self.open.swap(false, Ordering::AcqRel) {
            self.metrics
                .sessions_open
                .with_label_values(&[self.kind])
                .dec();
        }
    }
}

impl Drop for MeteredDriver {
    fn drop(&mut self) {
        self.session_ended();
    }
}

#[async_trait]
impl BmcDriver for MeteredDriver {
    async fn system(&self) -> Result<SystemInfo, Error> {
        let m = &self.metrics;
        m.observe("system", self.kind, self.inner.system()).await
    }

    async fn inventory(&self) -> Result<Inventory, Error> {
        let m = &self.metrics;
        m.observe("inventory", self.kind, self.inner.inventory())
            .await
    }

    async fn readiness(&self) -> Result<Readiness, Error> {
        let m = &self.metrics;
        m.observe("readiness", self.kind, self.inner.readiness())
            .await
    }

    async fn power(&self) -> Result<PowerState, Error> {
        let m = &self.metrics;
        m.observe("power", self.kind, self.inner.power()).await
    }

    async fn start_update(
        &self,
        package: &Package,
        options: &UpdateOptions,
    ) -> Result<UpdateStart, Error> {
        let m = &self.metrics;
        m.observe(
            "start_update",
            self.kind,
            self.inner.start_update(package, options),
        )
        .await
    }

    async fn job_ids(&self) -> Result<Option<Vec<String>>, Error> {
        let m = &self.metrics;
        m.observe("job_ids", self.kind, self.inner.job_ids()).await
    }

    async fn find_job(&self, query: &JobQuery<'_>) -> Result<JobSearch, Error> {
        let m = &self.metrics;
        m.observe("find_job", self.kind, self.inner.find_job(query))
            .await
    }

    async fn poll_job(&self, job: &JobHandle) -> Result<JobStatus, Error> {
        let m = &self.metrics;
        m.observe("poll_job", self.kind, self.inner.poll_job(job))
            .await
    }

    async fn reset(&self, kind: ResetKind) -> Result<(), Error> {
        let m = &self.metrics;
        m.observe("reset", self.kind, self.inner.reset(kind)).await
    }

    async fn rollback(&self, component: &FirmwareComponent) -> Result<Option<JobHandle>, Error> {
        let m = &self.metrics;
        m.observe("rollback", self.kind, self.inner.rollback(component))
            .await
    }

    async fn clear_job_queue(&self) -> Result<(), Error> {
        let m = &self.metrics;
        m.observe("clear_job_queue", self.kind, self.inner.clear_job_queue())
            .await
    }

    async fn close(&self) -> Result<(), Error> {
        let m = &self.metrics;
        let r = m.observe("close", self.kind, self.inner.close()).await;
        self.session_ended();
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firmflow_core::model::NewHost;
    use firmflow_core::testkit::fakes::{FakeFleet, HostScript};
    use prometheus::{Encoder as _, TextEncoder};

    fn render(r: &Registry) -> String {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&r.gather(), &mut buf).unwrap();
        String::from_utf8(buf).unwrap()
    }

    fn host(fqdn: &str, kind: &str) -> Host {
        serde_json::from_value::<NewHost>(serde_json::json!({
            "fqdn": fqdn, "mgmt_ip": "10.0.0.1", "mgmt_kind": kind,
        }))
        .unwrap()
        .into_host(chrono::Utc::now())
    }

    #[tokio::test]
    async fn operations_outcomes_and_open_sessions_are_counted() {
        let registry = Registry::new();
        let m = BmcMetrics::register(&registry).unwrap();
        let fleet = FakeFleet::new();
        fleet.add_host("h1", HostScript::default());
        let connector = MeteredConnector::new(Arc::new(fleet.clone()), m);
        let h1 = host("h1", "idrac");
        let d = connector.connect(&h1).await.unwrap();
        d.system().await.unwrap();
        d.inventory().await.unwrap();
        let unknown = JobHandle {
            id: "JID_000000000000".into(),
            location: None,
        };
        let _ = d.poll_job(&unknown).await;
        let text = render(&registry);
        for want in [
            "bmc_operations_total{host_kind=\"idrac\",operation=\"system\",outcome=\"ok\"} 1",
            "bmc_operations_total{host_kind=\"idrac\",operation=\"connect\",outcome=\"ok\"} 1",
            "bmc_operation_duration_seconds_count{host_kind=\"idrac\",operation=\"inventory\"} 1",
            "bmc_sessions_open{host_kind=\"idrac\"} 1",
        ] {
            assert!(text.contains(want), "{want} missing:\n{text}");
        }
        assert!(
            text.contains("operation=\"poll_job\",outcome=\"not_found\"} 1")
                || text.contains("operation=\"poll_job\",outcome=\"ok\"} 1"),
            "{text}"
        );
        d.close().await.unwrap();
        drop(d);
        let text = render(&registry);
        assert!(
            text.contains("bmc_sessions_open{host_kind=\"idrac\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("operation=\"close\",outcome=\"ok\"} 1"),
            "{text}"
        );

        // A driver dropped without close still leaves the gauge.
        let d = connector.connect(&h1).await.unwrap();
        drop(d);
        assert!(render(&registry).contains("bmc_sessions_open{host_kind=\"idrac\"} 0"));

        // A refused connection counts its error kind and opens nothing; a
        // free-text management kind is labelled `other`.
        fleet.set_unreachable("h2", true);
        assert!(connector.connect(&host("h2", "weird-bmc")).await.is_err());
        let text = render(&registry);
        assert!(
            text.contains(
                "bmc_operations_total{host_kind=\"other\",operation=\"connect\",outcome=\"unreachable\"} 1"
            ),
            "{text}"
        );
        assert!(!text.contains("weird-bmc"), "{text}");
        assert!(
            !text.contains("bmc_sessions_open{host_kind=\"other\"} 1"),
            "{text}"
        );
    }
}
