//! A small client of the admin API for the CLI verbs (plain HTTP; put TLS in front with a
//! proxy, or run the CLI next to the server).

use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use serde_json::Value;

/// Where the admin API is and how to authenticate.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The pubfn server.
    #[arg(
        long,
        env = "PUBFN_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub server: String,
}

/// Calls the admin API; returns the JSON answer, or the problem's detail as the error.
pub async fn call(
    server: &ServerArgs,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    send(
        server,
        method,
        path,
        "application/json",
        Full::new(Bytes::from(payload)),
    )
    .await
}

/// Calls the admin API with a body of `content_type` (streamed if `body` is); returns the JSON
/// answer, or the problem's detail as the error.
pub async fn send<B>(
    server: &ServerArgs,
    method: &str,
    path: &str,
    content_type: &str,
    body: B,
) -> Result<Value, String>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let key = crate::config::admin_key().ok_or("set PUBFN_ADMIN_KEY to the server's admin key")?;
    let base: hyper::Uri = server
        .server
        .parse()
        .map_err(|e| format!("--server: {e}"))?;
    if base.scheme_str() != Some("http") {
        return Err("--server must be an http:// URL (the CLI speaks plain HTTP)".into());
    }
    let authority = base.authority().ok_or("--server needs a host")?.clone();
    let address = if authority.port().is_some() {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let stream = tokio::net::TcpStream::connect(&address)
        .await
        .map_err(|e| format!("connecting to {address}: {e}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let request = hyper::Request::builder()
        .method(method)
        .uri(format!("/admin/v1{path}"))
        .header("host", authority.as_str())
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", content_type)
        .body(body)
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let value: Value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    if status.is_success() {
        return Ok(value);
    }
    let detail = value["detail"].as_str().unwrap_or("no detail");
    let position = match (value["line"].as_u64(), value["column"].as_u64()) {
        (Some(line), Some(column)) => format!(" (line {line}, column {column})"),
        _ => String::new(),
    };
    Err(format!("{status}: {detail}{position}"))
}

/// Prints a JSON answer for people.
pub fn print(value: &Value) {
    if !value.is_null() {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    }
}
