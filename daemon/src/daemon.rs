//! Running the daemon: open the engine, spawn the executor, serve the API,
//! and stop gracefully on SIGTERM/SIGINT: readiness turns 503 and live
//! streams end, the executor stops claiming and brings every run to a safe
//! point and releases its lease, the server drains; all within
//! `executor.grace_secs`. Past the grace the executor is aborted the way a
//! crash would (leases expire and another daemon takes the runs over).

use crate::api::{self, AppState};
use crate::auth::Tokens;
use crate::config::Config;
use crate::engine::Engine;
use crate::metrics::{Metrics, PhaseTimer};
use anyhow::Context as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};

/// How the daemon ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// Every run reached a safe point within the grace.
    Clean,
    /// The grace passed; runs were abandoned to lease expiry.
    GraceExceeded,
}

/// Runs until `shutdown` resolves.
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Exit> {
    let addr = config.listen_addr().map_err(|p| anyhow::anyhow!("{p}"))?;
    // Before anything starts: a bad certificate stops the daemon at once.
    let tls = config
        .api
        .tls
        .as_ref()
        .map(crate::tls::server_config)
        .transpose()?;
    let metrics = Arc::new(Metrics::new().context("registering metrics")?);
    let engine = Arc::new(Engine::open(&config, Some(&metrics)).await?);
    if let Some(pg) = &engine.pg {
        let n = crate::rls::provision(pg, &config.api.tokens).await?;
        if n > 0 {
            tracing::info!(
                tokens = n,
                "datacenter-scoped tokens read under row-level security"
            );
        }
    }
    let executor = engine.executor.clone();
    // Phase durations from the progress stream.
    let mut progress = executor.subscribe();
    let m = metrics.clone();
    let timer = tokio::spawn(async move {
        let mut t = PhaseTimer::new();
        loop {
            match progress.recv().await {
                Ok(ev) => t.observe(&m, &ev, std::time::Instant::now()),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => break,
            }
        }
    });
    let handle = Arc::new(Mutex::new(Some(executor.spawn())));
    let (stop_tx, stop_rx) = watch::channel(false);
    let state = AppState {
        store: engine.store.clone(),
        executor: executor.clone(),
        engine: engine.clone(),
        tokens: Arc::new(Tokens::new(&config.api.tokens)),
        metrics,
        config: Arc::new(config.clone()),
        handle: handle.clone(),
        stopping: stop_rx,
        plan_views: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr} (api.listen)"))?;
    let bound = listener.local_addr().unwrap_or(addr);
    info!(
        listen = %bound,
        https = config.api.tls.is_some(),
        worker = %executor.worker_id(),
        store = ?config.store.kind,
        open = config.api.tokens.is_empty(),
        "firmflowd ready"
    );
    let grace = Duration::from_secs(config.executor.grace_secs);
    let (drain_tx, drain_rx) = tokio::sync::oneshot::channel::<()>();
    let app = api::router(state);
    let drained = async move {
        let _ = drain_rx.await;
    };
    let server = match tls {
        Some(tls) => {
            let listener = crate::tls::TlsListener::new(listener, tls)
                .with_context(|| format!("serving HTTPS on {bound}"))?;
            tokio::spawn(
                axum::serve(listener, app)
                    .with_graceful_shutdown(drained)
                    .into_future(),
            )
        }
        None => tokio::spawn(
            axum::serve(listener, app)
                .with_graceful_shutdown(drained)
                .into_future(),
        ),
    };
    shutdown.await;
    info!("stopping: no new claims; runs go to safe points and release their leases");
    // Stored even if no task holds a receiver at this instant.
    stop_tx.send_replace(true);
    let h = handle.lock().ok().and_then(|mut g| g.take());
    let mut exit = Exit::Clean;
    if let Some(h) = h {
        let stop = tokio::time::timeout(grace, h.shutdown()).await;
        if stop.is_err() {
            warn!(
                grace_secs = grace.as_secs(),
                "grace passed: runs left to lease expiry"
            );
            exit = Exit::GraceExceeded;
        }
    }
    let _ = drain_tx.send(());
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => warn!(error = %e, "server ended with an error"),
        Ok(Err(e)) => warn!(error = %e, "server task failed"),
        Err(_) => warn!("connections still open after 5 s; closing"),
    }
    timer.abort();
    if let Some(pg) = &engine.pg {
        pg.close().await;
    }
    info!(?exit, "firmflowd stopped");
    Ok(exit)
}

/// Resolves on SIGTERM or SIGINT.
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut t), Ok(mut i)) => {
                tokio::select! {
                    _ = t.recv() => info!("SIGTERM"),
                    _ = i.recv() => info!("SIGINT"),
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
