//! A component for the host's tests: each path exercises one host behaviour (traps, loops,
//! memory exhaustion, config, key-value, outbound HTTP, Spin headers, stderr, slow requests).

wit_bindgen::generate!({
    path: "../../../wit",
    world: "mcp-auth:components/component",
    // wit-bindgen 0.46 fails on the gated timezone import of wasi:cli 0.2.12 unless the gate
    // is open; unused imports are dropped from the component, so the host need not have it.
    features: ["clocks-timezone"],
    generate_all,
});

use exports::wasi::http::incoming_handler::Guest as IncomingHandler;
use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingRequest, OutgoingResponse, ResponseOutparam,
    Scheme,
};
use wasi::keyvalue::{atomics, store};

struct TestGuest;

/// Written by every request to `/leftovers`; a fresh instance starts with it zero.
static mut MARK: u64 = 0;

/// What an earlier request left in this instance's memory: the static `MARK` (the data
/// image) and a heap block (fresh pages), reported, then overwritten for the next instance to
/// find if memory were ever reused without a reset.
fn leftovers() -> (u16, Vec<u8>) {
    // SAFETY: one request per instance, one thread.
    let mark = unsafe { std::ptr::addr_of_mut!(MARK).read_volatile() };
    let mut heap = Vec::<u64>::with_capacity(4096);
    // SAFETY: reading the fresh allocation's uninitialised words is the point: a reset memory
    // holds zeros there. The values are only compared, as plain integers.
    let dirty = (0..4096)
        .filter(|i| unsafe { heap.as_ptr().add(*i).read_volatile() } != 0)
        .count();
    heap.resize(4096, 0xdead_beef);
    std::hint::black_box(&heap);
    unsafe { std::ptr::addr_of_mut!(MARK).write_volatile(0xdead_beef) };
    (200, format!("mark {mark} dirty {dirty}").into_bytes())
}

/// Set by `wizer-initialize`: a host that pre-initializes components runs it once, at load,
/// and every instance starts with the value; a host that does not leaves it zero.
static mut PREINITIALIZED: u64 = 0;
/// How often `wizer-initialize` ran in the memory this instance started from.
static mut INIT_CALLS: u64 = 0;

/// Requests this instance has handled (1 on a fresh instance's first request).
static mut CALLS: u64 = 0;

/// Headers of an earlier request, kept past its end by `/keep-headers` (a guest that leaks a
/// resource of its request).
static mut KEPT: Option<Fields> = None;

export!(TestGuest);

impl Guest for TestGuest {
    fn wizer_initialize() {
        // The variant that reaches for an import here (a random seed, the kind of thing that
        // must never be frozen into a snapshot every instance shares).
        #[cfg(feature = "init-calls-import")]
        std::hint::black_box(wasi::random::random::get_random_u64());
        // SAFETY: one call, one thread, before any request.
        unsafe {
            std::ptr::addr_of_mut!(PREINITIALIZED).write_volatile(0x5eed);
            let calls = std::ptr::addr_of_mut!(INIT_CALLS);
            calls.write_volatile(calls.read_volatile() + 1);
        }
    }
}

/// What `wizer-initialize` left: the marker and how many times it ran.
fn preinitialized() -> (u16, Vec<u8>) {
    // SAFETY: one request per instance, one thread.
    let (marker, calls) = unsafe {
        (
            std::ptr::addr_of!(PREINITIALIZED).read_volatile(),
            std::ptr::addr_of!(INIT_CALLS).read_volatile(),
        )
    };
    (
        200,
        format!("marker {marker:#x} calls {calls}").into_bytes(),
    )
}

impl IncomingHandler for TestGuest {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        // SAFETY: one thread; requests in one instance run one after another.
        let calls = unsafe {
            let calls = std::ptr::addr_of_mut!(CALLS);
            calls.write_volatile(calls.read_volatile() + 1);
            calls.read_volatile()
        };
        let pq = request.path_with_query().unwrap_or_default();
        let (path, query) = pq.split_once('?').unwrap_or((pq.as_str(), ""));
        let param = |name: &str| -> String {
            query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_owned())
                .unwrap_or_default()
        };
        let (status, body): (u16, Vec<u8>) = match path {
            "/ok" => (200, b"ok".to_vec()),
            "/leftovers" => leftovers(),
            "/preinitialized" => preinitialized(),
            "/calls" => (200, calls.to_string().into_bytes()),
            "/keep-headers" => {
                // SAFETY: as for CALLS.
                unsafe { *std::ptr::addr_of_mut!(KEPT) = Some(request.headers()) };
                (200, calls.to_string().into_bytes())
            }
            "/trap" => panic!("the test asked for a trap"),
            "/loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "/oom" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "/config" => match wasi::config::store::get(&param("name")) {
                Ok(Some(v)) => (200, v.into_bytes()),
                Ok(None) => (404, b"none".to_vec()),
                Err(e) => (500, format!("{e:?}").into_bytes()),
            },
            "/stderr" => {
                eprintln!("guest line on stderr");
                (200, b"ok".to_vec())
            }
            "/sleep" => {
                // Tells the test the request is in flight before it sleeps.
                if let Ok(bucket) = store::open("default") {
                    let _ = bucket.set("sleeping", b"yes");
                }
                let ms = param("ms").parse().unwrap_or(100);
                std::thread::sleep(std::time::Duration::from_millis(ms));
                (200, b"slept".to_vec())
            }
            "/body" => {
                let len = read_request_body(&request);
                (200, len.to_string().into_bytes())
            }
            "/grow" => {
                let n: usize = param("bytes").parse().unwrap_or(0);
                std::hint::black_box(vec![1u8; n]);
                (200, b"grown".to_vec())
            }
            "/big" => {
                let n: usize = param("bytes").parse().unwrap_or(0);
                (200, vec![b'x'; n])
            }
            "/fetch" => fetch(&param("url")),
            p if p.starts_with("/kv/") => keyvalue(&p[4..], &param),
            _ => (200, describe(&request)),
        };
        respond(out, status, &body);
    }
}

/// Which component this is (its `component_name` variable) and the `spin-*` headers it got.
fn describe(request: &IncomingRequest) -> Vec<u8> {
    let name = wasi::config::store::get("component_name")
        .ok()
        .flatten()
        .unwrap_or_default();
    let mut text = format!("component: {name}\n");
    let mut headers = request.headers().entries();
    headers.sort();
    for (name, value) in headers {
        if name.starts_with("spin-") {
            text.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(&value)));
        }
    }
    text.into_bytes()
}

fn keyvalue(op: &str, param: &dyn Fn(&str) -> String) -> (u16, Vec<u8>) {
    let label = match param("label") {
        l if l.is_empty() => "default".to_owned(),
        l => l,
    };
    let bucket = match store::open(&label) {
        Ok(b) => b,
        Err(store::Error::AccessDenied) => return (403, b"access-denied".to_vec()),
        Err(store::Error::NoSuchStore) => return (404, b"no-such-store".to_vec()),
        Err(store::Error::Other(e)) => return (500, e.into_bytes()),
    };
    let key = param("key");
    let text = |r: Result<String, store::Error>| match r {
        Ok(s) => (200, s.into_bytes()),
        Err(e) => (500, format!("{e:?}").into_bytes()),
    };
    match op {
        "open" => (200, b"ok".to_vec()),
        "set" => text(
            bucket
                .set(&key, param("value").as_bytes())
                .map(|()| "ok".into()),
        ),
        "get" => match bucket.get(&key) {
            Ok(Some(v)) => (200, v),
            Ok(None) => (404, b"none".to_vec()),
            Err(e) => (500, format!("{e:?}").into_bytes()),
        },
        "delete" => text(bucket.delete(&key).map(|()| "ok".into())),
        "exists" => text(bucket.exists(&key).map(|b| b.to_string())),
        "incr" => text(atomics::increment(&bucket, &key, 1).map(|n| n.to_string())),
        // Claim the key once: only the first caller finds it absent and swaps.
        "claim" => {
            let cas = match atomics::Cas::new(&bucket, &key) {
                Ok(c) => c,
                Err(e) => return (500, format!("{e:?}").into_bytes()),
            };
            if !matches!(cas.current(), Ok(None)) {
                return (409, b"lost".to_vec());
            }
            match atomics::swap(cas, b"claimed") {
                Ok(()) => (200, b"won".to_vec()),
                Err(atomics::CasError::CasFailed(_)) => (409, b"lost".to_vec()),
                Err(atomics::CasError::StoreError(e)) => (500, format!("{e:?}").into_bytes()),
            }
        }
        // Add one with compare-and-swap, retrying on conflict with the fresh handle.
        "cas-incr" => {
            let mut cas = match atomics::Cas::new(&bucket, &key) {
                Ok(c) => c,
                Err(e) => return (500, format!("{e:?}").into_bytes()),
            };
            loop {
                let current: u64 = match cas.current() {
                    Ok(Some(v)) => String::from_utf8_lossy(&v).parse().unwrap_or(0),
                    Ok(None) => 0,
                    Err(e) => return (500, format!("{e:?}").into_bytes()),
                };
                let next = (current + 1).to_string();
                match atomics::swap(cas, next.as_bytes()) {
                    Ok(()) => return (200, next.into_bytes()),
                    Err(atomics::CasError::CasFailed(fresh)) => cas = fresh,
                    Err(atomics::CasError::StoreError(e)) => {
                        return (500, format!("{e:?}").into_bytes())
                    }
                }
            }
        }
        _ => (404, b"no such kv operation".to_vec()),
    }
}

/// GET `url` (`http(s)://authority/path`); 200 with the upstream's status and body, or 502
/// with the error code.
fn fetch(url: &str) -> (u16, Vec<u8>) {
    let (scheme, rest) = match url.split_once("://") {
        Some(("http", rest)) => (Scheme::Http, rest),
        Some(("https", rest)) => (Scheme::Https, rest),
        _ => return (400, b"bad url".to_vec()),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let req = OutgoingRequest::new(Fields::new());
    let _ = req.set_scheme(Some(&scheme));
    let _ = req.set_authority(Some(authority));
    let _ = req.set_path_with_query(Some(path));
    let future = match wasi::http::outgoing_handler::handle(req, None) {
        Ok(f) => f,
        Err(e) => return (502, format!("{e:?}").into_bytes()),
    };
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(r))) => r,
        Some(Ok(Err(e))) => return (502, format!("{e:?}").into_bytes()),
        _ => return (502, b"no response".to_vec()),
    };
    let status = response.status();
    let Ok(body) = response.consume() else {
        return (502, b"no body".to_vec());
    };
    let mut bytes = Vec::new();
    if let Ok(stream) = body.stream() {
        while let Ok(chunk) = stream.blocking_read(4096) {
            bytes.extend_from_slice(&chunk);
        }
    }
    let mut text = format!("{status} ").into_bytes();
    text.extend_from_slice(&bytes);
    (200, text)
}

fn read_request_body(request: &IncomingRequest) -> usize {
    let Ok(body) = request.consume() else {
        return 0;
    };
    let mut len = 0;
    if let Ok(stream) = body.stream() {
        while let Ok(chunk) = stream.blocking_read(65536) {
            len += chunk.len();
        }
    }
    len
}

fn respond(out: ResponseOutparam, status: u16, body: &[u8]) {
    let headers = Fields::new();
    let _ = headers.set("content-type", &[b"text/plain".to_vec()]);
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let Ok(outgoing) = response.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = outgoing.write() {
        for chunk in body.chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                break;
            }
        }
    }
    let _ = OutgoingBody::finish(outgoing, None);
}
