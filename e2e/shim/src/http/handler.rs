//! One HTTP request: a fresh component instance from the pre-linked component, the request
//! handed to `wasi:http/incoming-handler.handle`, the guest's response streamed back.
//!
//! A fresh instance per request is the `wasi:http/proxy` contract (no state leaks between
//! requests) and what makes a trap harmless: it kills that instance only, the pod keeps serving
//! and the client gets a 500.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use wasmtime::Store;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use super::metrics::Counters;
use crate::component::HostState;
use crate::wasi;

/// Everything a request needs, shared by all connections.
pub struct Handler {
    pub pre: ProxyPre<HostState>,
    pub guest: wasi::Guest,
    pub counters: Arc<Counters>,
}

impl Handler {
    pub async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Result<Response<HyperOutgoingBody>, Infallible> {
        // The kubelet's probes are not traffic: counting them would keep every app "busy"
        // and scale to zero would never happen.
        let in_flight = (!is_kubelet_probe(&request)).then(|| self.counters.start());
        match self.clone().dispatch(request, in_flight).await {
            Ok(response) => Ok(response),
            Err(err) => {
                self.counters.failed();
                eprintln!("wasmkube-shim: request failed: {err:?}");
                Ok(plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error: the Wasm handler failed\n"))
            }
        }
    }

    async fn dispatch(
        self: Arc<Self>,
        request: Request<Incoming>,
        in_flight: Option<super::metrics::InFlight>,
    ) -> wasmtime::Result<Response<HyperOutgoingBody>> {
        let wasi = wasi::builder(&self.guest)?.build();
        let mut store = Store::new(self.pre.engine(), HostState::new(wasi));
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let incoming = store.data_mut().http().new_incoming_request(Scheme::Http, request)?;
        let outparam = store.data_mut().http().new_response_outparam(sender)?;
        let pre = self.pre.clone();
        // The guest may keep running after it has sent the response head (to stream the
        // body), so it runs in its own task; the in-flight guard lives as long as it does.
        let guest = tokio::spawn(async move {
            let _in_flight = in_flight;
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy.wasi_http_incoming_handler().call_handle(&mut store, incoming, outparam).await
        });
        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err(wasmtime::format_err!("the guest answered with an error code: {code:?}")),
            // The guest returned or trapped without setting a response: its task says which.
            Err(_) => match guest.await {
                Ok(Ok(())) => Err(wasmtime::format_err!("the guest returned without setting a response")),
                Ok(Err(trap)) => Err(trap.context("the guest trapped")),
                Err(join) => Err(wasmtime::format_err!("the guest task failed: {join}")),
            },
        }
    }
}

/// The kubelet's HTTP probes identify themselves as `kube-probe/<version>`.
fn is_kubelet_probe<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get(hyper::header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|agent| agent.starts_with("kube-probe/"))
}

/// A small text response of the host's own (errors the guest did not produce).
pub fn plain(status: StatusCode, text: &'static str) -> Response<HyperOutgoingBody> {
    let body = Full::new(Bytes::from_static(text.as_bytes())).map_err(|never| match never {}).boxed_unsync();
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(body)
        .expect("static response parts are valid")
}
