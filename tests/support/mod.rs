//! Shared test helpers: scripted mock services and loopback hyper servers.
#![allow(dead_code)]

pub mod logs;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::time::Instant;

/// One scripted reply: status and headers.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, http::HeaderValue)>,
}

/// A reply with these headers.
pub fn reply_with(status: u16, headers: &[(&'static str, &str)]) -> Reply {
    headers
        .iter()
        .fold(reply(status), |r, (name, value)| r.header(name, *value))
}

pub fn reply(status: u16) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
    }
}

impl Reply {
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into().parse().unwrap()));
        self
    }

    /// A header whose value is arbitrary bytes (e.g. not UTF-8).
    pub fn raw_header(mut self, name: &'static str, value: &[u8]) -> Self {
        self.headers
            .push((name, http::HeaderValue::from_bytes(value).unwrap()));
        self
    }

    fn build<B: Default>(&self) -> Response<B> {
        let mut res = Response::new(B::default());
        *res.status_mut() = StatusCode::from_u16(self.status).unwrap();
        for (k, v) in &self.headers {
            res.headers_mut().append(*k, v.clone());
        }
        res
    }
}

/// What a scripted service saw.
#[derive(Default, Debug)]
pub struct Seen {
    pub at: Vec<Instant>,
    pub attempts: Vec<u32>,
}

/// A cloneable mock service answering the n-th call with `script[n]` (the
/// last entry repeats), recording call times and attempt numbers.
pub fn scripted<B: Send + 'static>(
    script: Vec<Reply>,
) -> (
    impl tower::Service<
            Request<B>,
            Response = Response<String>,
            Error = Infallible,
            Future = impl Send,
        > + Clone,
    Arc<Mutex<Seen>>,
) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let log = seen.clone();
    let script = Arc::new(script);
    let svc = tower::service_fn(move |req: Request<B>| {
        let mut s = log.lock().unwrap();
        let n = s.at.len();
        s.at.push(Instant::now());
        s.attempts
            .push(tower_backoff::Attempt::of(req.extensions()));
        let r = script[n.min(script.len() - 1)].build();
        async move { Ok::<_, Infallible>(r) }
    });
    (svc, seen)
}

pub fn calls(seen: &Arc<Mutex<Seen>>) -> usize {
    seen.lock().unwrap().at.len()
}

/// A hyper HTTP/1 server on 127.0.0.1:0 answering the n-th request with
/// `script[n]` (the last repeats). Returns its address and the request count.
pub async fn serve_script(script: Vec<Reply>) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    let addr = serve(script, move |r: Received| {
        let mut s = seen.lock().unwrap();
        s.push(format!("{} {}", r.method, r.path));
        s.len() - 1
    })
    .await;
    (addr, log)
}

/// One request as a loopback server received it, body read in full.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: http::Method,
    pub path: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    /// A body that failed while being read (e.g. the client gave up).
    pub body_error: Option<String>,
    /// When the request head arrived.
    pub at: Instant,
}

/// Like [`serve_script`], recording every request in full.
pub async fn serve_recorded(script: Vec<Reply>) -> (SocketAddr, Arc<Mutex<Vec<Received>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    let addr = serve(script, move |r: Received| {
        let mut s = seen.lock().unwrap();
        s.push(r);
        s.len() - 1
    })
    .await;
    (addr, log)
}

/// A hyper HTTP/1 server on 127.0.0.1:0: every request is read in full and
/// passed to `record`, which returns its index `n`; the reply is `script[n]`
/// (the last repeats). The server runs until the test's runtime ends.
pub async fn serve<F>(script: Vec<Reply>, record: F) -> SocketAddr
where
    F: Fn(Received) -> usize + Send + Sync + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let script = Arc::new(script);
    let record = Arc::new(record);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (record, script) = (record.clone(), script.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (record, script) = (record.clone(), script.clone());
                    async move {
                        let at = Instant::now();
                        let (parts, body) = req.into_parts();
                        let (body, body_error) = match body.collect().await {
                            Ok(b) => (b.to_bytes(), None),
                            Err(e) => (Bytes::new(), Some(e.to_string())),
                        };
                        let n = record(Received {
                            method: parts.method,
                            path: parts.uri.path().to_string(),
                            headers: parts.headers,
                            body,
                            body_error,
                            at,
                        });
                        let r: Response<Full<Bytes>> = script[n.min(script.len() - 1)].build();
                        Ok::<_, Infallible>(r)
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, svc)
                    .await;
            });
        }
    });
    addr
}

/// A hyper-util legacy HTTP client sending `Full<Bytes>` bodies.
pub fn http_client() -> hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
> {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

/// When the calls arrived.
pub fn times(seen: &Arc<Mutex<Seen>>) -> Vec<Instant> {
    seen.lock().unwrap().at.clone()
}
