//! An upstream for handlers' outbound HTTP: HTTPS with a certificate from a test CA (written to
//! a PEM file for `--egress-ca-file`) and plain HTTP, both on 127.0.0.1, counting every
//! request it receives, so a test can tell that a refused request never left the machine.
//!
//! | path | answer |
//! | --- | --- |
//! | `/json` | 200, JSON echo of method, path, query, headers and body |
//! | `/text` | 200, `text/plain` "hello from upstream" |
//! | `/status/N` | status N, empty body |
//! | `/redirect?to=URL` | 302 to URL |
//! | `/slow` | nothing, for ten minutes |
//! | `/big` | 100 MiB, streamed, without a length |

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

type Body = BoxBody<Bytes, Infallible>;

/// The running upstream.
pub struct Upstream {
    /// Port of the HTTPS listener (certificate for `localhost` and 127.0.0.1).
    pub https_port: u16,
    /// Port of the plain HTTP listener.
    pub http_port: u16,
    /// The test CA, PEM.
    pub ca_file: PathBuf,
    hits: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

impl Upstream {
    /// Requests received so far, on either listener.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// `https://localhost:PORT{path}`.
    pub fn https(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.https_port)
    }

    /// `http://localhost:PORT{path}`.
    pub fn http(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.http_port)
    }

    /// Starts both listeners on the current runtime.
    pub async fn start() -> Upstream {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "pubfn egress test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .unwrap()
                .signed_by(&leaf_key, &ca, &ca_key)
                .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .unwrap();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

        let hits = Arc::new(AtomicUsize::new(0));
        let https = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (https_port, http_port) = (
            https.local_addr().unwrap().port(),
            http.local_addr().unwrap().port(),
        );
        let counted = hits.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = https.accept().await else {
                    continue;
                };
                let (acceptor, hits) = (acceptor.clone(), counted.clone());
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(stream).await {
                        serve(TokioIo::new(tls), hits).await;
                    }
                });
            }
        });
        let counted = hits.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = http.accept().await else {
                    continue;
                };
                tokio::spawn(serve(TokioIo::new(stream), counted.clone()));
            }
        });
        Upstream {
            https_port,
            http_port,
            ca_file,
            hits,
            _dir: dir,
        }
    }
}

async fn serve<I>(io: I, hits: Arc<AtomicUsize>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        hits.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, Infallible>(answer(request).await) }
    });
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(io, service)
        .await;
}

fn full(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into()).boxed()
}

async fn answer(request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    if path == "/slow" {
        tokio::time::sleep(Duration::from_secs(600)).await;
    }
    if path == "/big" {
        let chunk = Bytes::from(vec![b'x'; 1 << 20]);
        let stream = futures_util::stream::iter(
            (0..100).map(move |_| Ok::<_, Infallible>(Frame::data(chunk.clone()))),
        );
        return Response::new(StreamBody::new(stream).boxed());
    }
    if let Some(status) = path.strip_prefix("/status/") {
        let mut response = Response::new(full(""));
        *response.status_mut() = status.parse().unwrap_or(hyper::StatusCode::BAD_REQUEST);
        return response;
    }
    if path == "/redirect" {
        let to = form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "to")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        return Response::builder()
            .status(302)
            .header("location", to)
            .body(full(""))
            .unwrap();
    }
    if path == "/text" {
        return Response::builder()
            .header("content-type", "text/plain; charset=utf-8")
            .body(full("hello from upstream"))
            .unwrap();
    }
    let method = request.method().to_string();
    let version = format!("{:?}", request.version());
    let headers: BTreeMap<String, String> = request
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let echo = serde_json::json!({
        "method": method,
        "path": path,
        "query": query,
        "version": version,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    Response::builder()
        .header("content-type", "application/json")
        .header("set-cookie", "session=abc; Path=/")
        .body(full(echo.to_string()))
        .unwrap()
}
