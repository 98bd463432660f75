//! Request counters, and the tiny endpoint that exposes them.
//!
//! wasmkube's activator decides that an app is idle from these numbers (no new requests and
//! none in flight for the app's idle period), so they must count every request the pod serves,
//! not only those that pass through a proxy. They are served on a separate address
//! (`WASMKUBE_METRICS_ADDR`) so no path of the app's own is taken away from it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::server::conn::http1;
use tokio::net::TcpListener;
use wasmtime_wasi_http::io::TokioIo;

#[derive(Default)]
pub struct Counters {
    total: AtomicU64,
    in_flight: AtomicI64,
    failed: AtomicU64,
}

/// Held while a request (and its response body) is being served.
pub struct InFlight(Arc<Counters>);

impl Counters {
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.total.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    pub fn failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        format!(
            "# TYPE wasmkube_http_requests_total counter\n\
             wasmkube_http_requests_total {}\n\
             # TYPE wasmkube_http_requests_in_flight gauge\n\
             wasmkube_http_requests_in_flight {}\n\
             # TYPE wasmkube_http_requests_failed_total counter\n\
             wasmkube_http_requests_failed_total {}\n",
            self.total.load(Ordering::Relaxed),
            self.in_flight.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serve `GET /metrics` (any path, in fact) on `addr` until the process exits.
pub async fn serve(addr: SocketAddr, counters: Arc<Counters>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let counters = counters.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |_req| {
                let body = Full::new(Bytes::from(counters.render())).map_err(|never| match never {});
                let response = hyper::Response::builder()
                    .header("content-type", "text/plain; version=0.0.4")
                    .body(body)
                    .expect("static response parts are valid");
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_total_and_in_flight() {
        let counters = Arc::new(Counters::default());
        let first = counters.start();
        let _second = counters.start();
        drop(first);
        let text = counters.render();
        assert!(text.contains("wasmkube_http_requests_total 2\n"), "{text}");
        assert!(text.contains("wasmkube_http_requests_in_flight 1\n"), "{text}");
    }
}
