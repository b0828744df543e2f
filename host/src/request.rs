//! The request phase: route, then serve the request in an instance from the pool (a fresh one,
//! or with [`Limits::instance_reuse`] an idle one that served earlier requests cleanly), within
//! the limits of [`Limits`]. Whatever the guest does (trap, loop, exhaust memory, answer with an
//! error), the outcome is a response for this request only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use tokio::sync::{oneshot, Semaphore};
use wasmtime::{Store, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::{Error as HttpError, WasiHttpCtx, WasiHttpView};

use crate::app::{App, LoadedComponent};
use crate::instances::{self, Checkout, Instance, Slot};
use crate::metrics::Metrics;
use crate::outbound::OutboundHooks;
use crate::routing::RouteMatch;
use crate::state::{GuestLimits, GuestOutput, HostState};
use crate::Limits;

/// How long after the guest's deadline the whole request is abandoned.
const OUTER_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Everything a request needs, shared by all of them.
pub(crate) struct Shared {
    pub(crate) engine: wasmtime::Engine,
    pub(crate) app: App,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) limits: Limits,
    /// One permit per instance slot of the pool.
    pub(crate) slots: Arc<Semaphore>,
}

/// Serves one request. Logs one line: method, route, component, status, duration (never the
/// query string, never a header).
pub(crate) async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    client: SocketAddr,
) -> Response<Full<Bytes>> {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let Some(route) = shared.app.router.route(&path) else {
        let res = plain(StatusCode::NOT_FOUND, "Not Found");
        shared.metrics.request("none", 404, start.elapsed());
        tracing::info!(%method, route = "none", component = "none", status = 404, duration_ms = ms(start), "request");
        return res;
    };
    // Validated at load: every routed component exists.
    let Some(component) = shared.app.components.get(&route.component).cloned() else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let deadline = tokio::time::Instant::now() + shared.limits.request_timeout;
    // The guest is stopped at `deadline` (epoch trap, or its task's own timeout), which ends the
    // request with a 500; this outer bound only catches what is left, e.g. a response body that
    // is still trickling in.
    let backstop = deadline + OUTER_GRACE;
    let res = match tokio::time::timeout_at(
        backstop,
        run(&shared, &component, &route, req, client, deadline),
    )
    .await
    {
        Ok(res) => res,
        Err(_elapsed) => {
            tracing::warn!(component = %component.id, "request exceeded its time limit");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    };
    let status = res.status().as_u16();
    shared
        .metrics
        .request(&component.id, status, start.elapsed());
    tracing::info!(
        %method,
        route = %route.raw_route,
        component = %component.id,
        status,
        duration_ms = ms(start),
        "request"
    );
    res
}

async fn run(
    shared: &Arc<Shared>,
    component: &Arc<LoadedComponent>,
    route: &RouteMatch,
    req: Request<Incoming>,
    client: SocketAddr,
    deadline: tokio::time::Instant,
) -> Response<Full<Bytes>> {
    let limits = &shared.limits;
    let too_long = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > limits.max_request_body_bytes as u64);
    if too_long {
        return plain(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large");
    }
    let req = match guest_request(req, route, client, limits.max_request_body_bytes) {
        Ok(req) => req,
        Err(message) => return plain(StatusCode::BAD_REQUEST, message),
    };
    let all = shared.app.components.values();
    let Some(checkout) = instances::checkout(component, all, &shared.slots).await else {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
    };
    let (tx, rx) = oneshot::channel();
    let task = match start_guest(shared, component, req, tx, checkout, deadline) {
        Ok(task) => task,
        Err(e) => {
            tracing::error!(component = %component.id, error = %e, "cannot prepare the request");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        }
    };
    let response = match rx.await {
        Ok(Ok(response)) => response,
        Ok(Err(code)) => {
            tracing::warn!(component = %component.id, error = ?code, "guest answered with an error");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        }
        // The guest ended without answering: it trapped (logged by the task) or returned early.
        Err(_) => {
            let _ = task.await;
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        }
    };
    let (parts, body) = response.into_parts();
    let body = match Limited::new(body, limits.max_response_body_bytes)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(e) => {
            tracing::warn!(component = %component.id, error = %e, "response body failed");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        }
    };
    // Nothing is acknowledged before the writes it may rest on are durable (see
    // `mcp_auth_kv::Store::sync`); a store that cannot flush is an outage.
    for allowed in &component.kv.allowed {
        if let Err(e) = allowed.store.sync().await {
            shared.metrics.store_error(&allowed.label);
            tracing::warn!(component = %component.id, store = %allowed.label, error = %e, "key-value backend cannot flush");
            let mut res = plain(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
            res.headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
            return res;
        }
    }
    Response::from_parts(parts, Full::new(body))
}

/// Calls the component's handler, in an idle instance or a new one, on a task of its own, so
/// that a guest still running after its response (or after the client left) is bounded by the
/// same deadline and still releases its pool slot. Afterwards the instance goes back to the
/// idle list if it may serve again (see [`instances`]), else it is dropped.
fn start_guest(
    shared: &Arc<Shared>,
    component: &Arc<LoadedComponent>,
    req: Request<GuestBody>,
    tx: oneshot::Sender<
        Result<Response<wasmtime_wasi_http::p2::body::HyperOutgoingBody>, ErrorCode>,
    >,
    checkout: Checkout,
    deadline: tokio::time::Instant,
) -> wasmtime::Result<tokio::task::JoinHandle<()>> {
    let mut slot = match checkout {
        Checkout::Idle(instance) => Slot::Idle(instance),
        Checkout::Fresh(permit) => Slot::Fresh {
            store: new_store(shared, component),
            permit,
        },
    };
    let store = slot.store();
    set_deadline(store, deadline);
    store.data_mut().limits.grew = false;
    let req = store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, req)?;
    let out = store.data_mut().http().new_response_outparam(tx)?;
    let pre = component.pre.clone();
    let component = component.clone();
    let metrics = shared.metrics.clone();
    let reuse = shared.limits.instance_reuse;
    Ok(tokio::spawn(async move {
        let call = async {
            let mut instance = slot.instantiate(&pre).await?;
            let Instance { proxy, store, .. } = &mut instance;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(store, req, out)
                .await?;
            wasmtime::Result::Ok(instance)
        };
        // A call cut short by the timeout leaves its instance mid-call: it is dropped here.
        let outcome = match tokio::time::timeout_at(deadline, call).await {
            Ok(outcome) => outcome,
            Err(_) => Err(wasmtime::format_err!(
                "request exceeded its wall-time limit"
            )),
        };
        match outcome {
            Ok(mut instance) => {
                if instance.store.data().limits.grew {
                    metrics.memory_grown(&component.id);
                }
                instance.served += 1;
                let reusable = instance.served < reuse && instance.is_clean();
                tracing::debug!(component = %component.id, served = instance.served, reusable, "request done");
                instances::check_in(&component, instance, reusable);
            }
            Err(e) => {
                metrics.trap(&component.id);
                tracing::warn!(component = %component.id, error = %format!("{e:#}"), "guest failed");
            }
        }
    }))
}

/// A store for a new instance of `component`: its WASI context, outbound policy, stores and
/// variables, which stay the same for every request the instance serves.
fn new_store(shared: &Shared, component: &LoadedComponent) -> Store<HostState> {
    let limits = &shared.limits;
    let output = GuestOutput {
        component: component.id.clone(),
        opened: Arc::default(),
    };
    let output_streams = output.opened.clone();
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdout(output.clone())
        .stderr(output)
        .envs(component.environment.as_slice());
    let state = HostState {
        component: component.id.clone(),
        wasi: wasi.build(),
        http: WasiHttpCtx::new(),
        table: wasmtime::component::ResourceTable::new(),
        hooks: OutboundHooks {
            component: component.id.clone(),
            allow: component.allow.clone(),
            connect_timeout: limits.outbound_connect_timeout,
            first_byte_timeout: limits.outbound_first_byte_timeout,
        },
        limits: GuestLimits::new(
            StoreLimitsBuilder::new()
                .memory_size(limits.max_memory_bytes)
                .build(),
        ),
        kv: component.kv.clone(),
        config: component.config.clone(),
        metrics: shared.metrics.clone(),
        output_streams,
    };
    let mut store = Store::new(&shared.engine, state);
    store.limiter(|s| &mut s.limits);
    store
}

/// Bounds this request's guest code by `deadline`: it yields to the executor every epoch tick
/// (fairness on few cores) and traps at the deadline.
fn set_deadline(store: &mut Store<HostState>, deadline: tokio::time::Instant) {
    let wall = deadline.into_std();
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if std::time::Instant::now() >= wall {
            Err(wasmtime::format_err!(
                "request exceeded its wall-time limit"
            ))
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
}

type GuestBody = http_body_util::combinators::UnsyncBoxBody<Bytes, HttpError>;

/// The request as the guest sees it: an absolute URI, Spin's `spin-*` headers (client-sent
/// ones removed so they cannot be forged), and a body cut at the limit.
fn guest_request(
    req: Request<Incoming>,
    route: &RouteMatch,
    client: SocketAddr,
    max_body: usize,
) -> Result<Request<GuestBody>, &'static str> {
    let (mut parts, body) = req.into_parts();
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()))
        .ok_or("Bad Request: missing Host header")?;
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    let full_url = format!("http://{host}{path_and_query}");
    parts.uri = full_url.parse().map_err(|_| "Bad Request: invalid URI")?;

    let spin: Vec<HeaderName> = parts
        .headers
        .keys()
        .filter(|k| k.as_str().starts_with("spin-"))
        .cloned()
        .collect();
    for k in spin {
        parts.headers.remove(k);
    }
    let mut set = |name: &str, value: &str| -> Result<(), &'static str> {
        let name =
            HeaderName::try_from(name).map_err(|_| "Bad Request: invalid route parameter")?;
        let value =
            HeaderValue::try_from(value).map_err(|_| "Bad Request: invalid header value")?;
        parts.headers.insert(name, value);
        Ok(())
    };
    set("spin-full-url", &full_url)?;
    set("spin-path-info", &route.path_info)?;
    set("spin-matched-route", &route.raw_route)?;
    set("spin-base-path", "/")?;
    set("spin-raw-component-route", &route.raw_route)?;
    set("spin-component-route", &route.component_route)?;
    set("spin-client-addr", &client.to_string())?;
    for (name, value) in &route.params {
        set(
            &format!("spin-path-match-{}", name.to_ascii_lowercase()),
            value,
        )?;
    }

    let body = Limited::new(body, max_body)
        .map_err(move |e| {
            if e.is::<http_body_util::LengthLimitError>() {
                HttpError::HttpRequestBodySize(Some(max_body as u64))
            } else {
                match e.downcast::<hyper::Error>() {
                    Ok(e) => HttpError::Hyper(*e),
                    Err(_) => HttpError::HttpProtocolError,
                }
            }
        })
        .boxed_unsync();
    Ok(Request::from_parts(parts, body))
}

pub(crate) fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

fn ms(start: Instant) -> u64 {
    start.elapsed().as_millis().try_into().unwrap_or(u64::MAX)
}
