//! Listeners and connections: one listener per iDRAC (closed while the iDRAC
//! restarts, so clients see "connection refused") or one shared listener that
//! routes by `Host` header.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

use crate::fleet::Inner;

/// Serves one host; rebinds the same port after an iDRAC restart.
pub(crate) async fn serve_host(
    inner: Arc<Inner>,
    idx: usize,
    listener: TcpListener,
    addr: SocketAddr,
) {
    let Some(host) = inner.hosts.get(idx).cloned() else {
        return;
    };
    let mut up = host.up.subscribe();
    let mut shutdown = inner.shutdown.subscribe();
    let mut listener = Some(listener);
    loop {
        if let Some(l) = listener.take() {
            loop {
                tokio::select! {
                    r = l.accept() => {
                        if let Ok((stream, _)) = r {
                            spawn_conn(&inner, Some(idx), stream);
                        }
                    }
                    r = up.wait_for(|u| !*u) => {
                        if r.is_err() { return; }
                        break;
                    }
                    _ = shutdown.wait_for(|s| *s) => return,
                }
            }
            drop(l);
        } else {
            tokio::select! {
                r = up.wait_for(|u| *u) => { if r.is_err() { return; } }
                _ = shutdown.wait_for(|s| *s) => return,
            }
            for _ in 0..200 {
                match TcpListener::bind(addr).await {
                    Ok(l) => {
                        listener = Some(l);
                        break;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
            if listener.is_none() {
                tracing::warn!(host = %host.name, %addr, "could not rebind after iDRAC restart");
                return;
            }
        }
    }
}

/// Serves every host on one listener (virtual hosts).
pub(crate) async fn serve_shared(inner: Arc<Inner>, listener: TcpListener) {
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        tokio::select! {
            r = listener.accept() => {
                if let Ok((stream, _)) = r {
                    spawn_conn(&inner, None, stream);
                }
            }
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

fn spawn_conn(inner: &Arc<Inner>, fixed: Option<usize>, stream: TcpStream) {
    inner
        .accepted
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let _ = stream.set_nodelay(true);
    let i2 = inner.clone();
    inner.spawn(async move {
        match i2.tls.clone() {
            Some(cfg) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
                if let Ok(Ok(tls)) =
                    tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await
                {
                    serve_io(i2, fixed, tls).await;
                }
            }
            None => serve_io(i2, fixed, stream).await,
        }
    });
}

async fn serve_io<I>(inner: Arc<Inner>, fixed: Option<usize>, io: I)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        let inner = inner.clone();
        async move { crate::redfish::handle(inner, fixed, req).await }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        // Head and body in one buffer: over TLS one record and one write
        // per response instead of two (a third of the simulator's CPU at
        // fleet scale was record encryption and `writev`).
        .writev(false)
        .serve_connection(TokioIo::new(io), svc)
        .await;
}
