//! Serving a `wasi:http/incoming-handler` component over HTTP/1.1, the way runwasi's wasmtime
//! shim does (same env contract, so what is tested here holds for clusters running runwasi), plus
//! a graceful drain on SIGTERM and request counters for scale to zero.
//!
//! Settings (read from the container env, hidden from the guest):
//! * `WASMTIME_HTTP_PROXY_SOCKET_ADDR`: listen address, default `0.0.0.0:8080`;
//! * `WASMTIME_HTTP_BACKLOG`: listen backlog, default 100;
//! * `WASMKUBE_METRICS_ADDR`: where to serve request counters, off by default;
//! * `WASMKUBE_DRAIN_TIMEOUT_SECONDS`: longest wait for in-flight requests after SIGTERM,
//!   unbounded by default (the kubelet's SIGKILL after the grace period is the real bound).

mod handler;
mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Notify, watch};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::component::HostState;
use crate::shutdown::{Stop, watch_signals};
use crate::wasi::{Guest, env_value};
use handler::Handler;
use metrics::Counters;

const DEFAULT_ADDR: &str = "0.0.0.0:8080";
const DEFAULT_BACKLOG: u32 = 100;

/// Where and how to listen, from the container env.
struct Settings {
    addr: SocketAddr,
    backlog: u32,
    metrics_addr: Option<SocketAddr>,
    drain_timeout: Option<Duration>,
}

impl Settings {
    fn from_env(env: &[(String, String)]) -> anyhow::Result<Self> {
        let parse_addr = |name: &str, value: String| -> anyhow::Result<SocketAddr> {
            value.parse().map_err(|_| anyhow::anyhow!("{name}={value:?} is not an address like 0.0.0.0:8080"))
        };
        let addr = parse_addr(
            "WASMTIME_HTTP_PROXY_SOCKET_ADDR",
            env_value(env, "WASMTIME_HTTP_PROXY_SOCKET_ADDR").unwrap_or_else(|| DEFAULT_ADDR.to_string()),
        )?;
        let backlog = match env_value(env, "WASMTIME_HTTP_BACKLOG") {
            Some(v) => v.parse().map_err(|_| anyhow::anyhow!("WASMTIME_HTTP_BACKLOG={v:?} is not a number"))?,
            None => DEFAULT_BACKLOG,
        };
        let metrics_addr = env_value(env, "WASMKUBE_METRICS_ADDR")
            .filter(|v| !v.is_empty())
            .map(|v| parse_addr("WASMKUBE_METRICS_ADDR", v))
            .transpose()?;
        let drain_timeout = match env_value(env, "WASMKUBE_DRAIN_TIMEOUT_SECONDS") {
            Some(v) => Some(Duration::from_secs_f64(v.parse().map_err(|_| {
                anyhow::anyhow!("WASMKUBE_DRAIN_TIMEOUT_SECONDS={v:?} is not a number of seconds")
            })?)),
            None => None,
        };
        Ok(Self { addr, backlog, metrics_addr, drain_timeout })
    }
}

/// Open connections, so a drain knows when the last one has finished.
#[derive(Default)]
struct Connections {
    open: AtomicUsize,
    closed: Notify,
}

struct Open(Arc<Connections>);

impl Connections {
    fn open(self: &Arc<Self>) -> Open {
        self.open.fetch_add(1, Ordering::SeqCst);
        Open(self.clone())
    }

    async fn all_closed(&self) {
        loop {
            let notified = self.closed.notified();
            if self.open.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
        self.0.closed.notify_waiters();
    }
}

/// Serve until a stop signal; returns the exit status (0 after a complete drain).
pub async fn serve(pre: ProxyPre<HostState>, guest: Guest, env: &[(String, String)]) -> anyhow::Result<i32> {
    let settings = Settings::from_env(env)?;
    let mut stop = watch_signals()?;
    let counters = Arc::new(Counters::default());
    if let Some(addr) = settings.metrics_addr {
        let counters = counters.clone();
        tokio::spawn(async move {
            if let Err(err) = metrics::serve(addr, counters).await {
                eprintln!("wasmkube-shim: metrics endpoint on {addr} failed: {err}");
            }
        });
    }
    let listener = listen(settings.addr, settings.backlog)?;
    eprintln!("wasmkube-shim: serving HTTP on http://{}/", listener.local_addr()?);
    let handler = Arc::new(Handler { pre, guest, counters });
    let connections = Arc::new(Connections::default());

    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => spawn_connection(stream, handler.clone(), connections.open(), stop.clone()),
                Err(err) => accept_failed(err).await,
            },
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() != Stop::Running {
                    break;
                }
            }
        }
    }
    // Closing the listener first: new connections are refused while old ones finish.
    drop(listener);
    if *stop.borrow() == Stop::Now {
        return Ok(143);
    }
    let started = Instant::now();
    let in_flight = connections.open.load(Ordering::SeqCst);
    eprintln!("wasmkube-shim: draining: stopped accepting, {in_flight} connection(s) open");
    let drained = async {
        tokio::select! {
            _ = connections.all_closed() => true,
            _ = stop.wait_for(|s| *s == Stop::Now) => false,
        }
    };
    let finished = match settings.drain_timeout {
        Some(limit) => tokio::time::timeout(limit, drained).await.unwrap_or(false),
        None => drained.await,
    };
    let open = connections.open.load(Ordering::SeqCst);
    eprintln!("wasmkube-shim: drain {} after {:?}, {open} connection(s) left", if finished { "complete" } else { "cut short" }, started.elapsed());
    Ok(if finished { 0 } else { 143 })
}

/// A listening socket with SO_REUSEADDR, so a restarted container can rebind at once even with
/// connections of its predecessor in TIME_WAIT.
fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Accept errors other than a vanished peer usually mean the file table is full: wait instead
/// of spinning, and keep serving the connections already open.
async fn accept_failed(err: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if !matches!(err.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        eprintln!("wasmkube-shim: accept failed: {err}; retrying in 100 ms");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One keep-alive connection; on a drain it finishes the request in progress and then closes.
fn spawn_connection(stream: TcpStream, handler: Arc<Handler>, open: Open, mut stop: watch::Receiver<Stop>) {
    let _ = stream.set_nodelay(true);
    tokio::spawn(async move {
        let _open = open;
        let service = hyper::service::service_fn(move |request| handler.clone().handle(request));
        let connection = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service);
        tokio::pin!(connection);
        // The watch guard must not live across an await (it is not Send): wait, then drop it.
        let stopping = async { stop.wait_for(|s| *s != Stop::Running).await.map(|_| ()) };
        let result = tokio::select! {
            result = connection.as_mut() => result,
            _ = stopping => {
                connection.as_mut().graceful_shutdown();
                connection.as_mut().await
            }
        };
        if let Err(err) = result
            && !err.is_incomplete_message()
        {
            eprintln!("wasmkube-shim: connection error: {err}");
        }
    });
}
