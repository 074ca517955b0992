//! The outbound-HTTP capability (`PQ_OP_HTTP`): the guest's `urllib`, `http.client`,
//! `requests` and `pq.connect(...)` all end here, one host call per request. This file decodes
//! the wire (a length-prefixed JSON head, then the body), hands the request to the tenant's
//! [`EgressCapability`], and encodes the answer the same way; what is allowed is decided in
//! `crate::egress`.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::AbiError;
use crate::egress::{EgressCapability, EgressError, OutboundRequest};

/// Largest JSON head of a request, in bytes.
const MAX_HEAD_BYTES: usize = 256 << 10;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Head {
    method: String,
    url: String,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    connection: Option<String>,
    #[serde(default)]
    follow_redirects: bool,
    #[serde(default)]
    timeout: Option<f64>,
}

#[derive(Serialize)]
struct ResponseHead<'a> {
    status: u16,
    reason: &'a str,
    headers: Vec<(&'a str, String)>,
    url: &'a str,
    version: &'a str,
}

/// Splits `[u32 LE head length][head][body]`.
fn split_frame(arg: &[u8]) -> Result<(&[u8], &[u8]), AbiError> {
    let malformed = || AbiError::new(AbiError::INVALID, "malformed HTTP call: bad framing");
    let (len, rest) = arg.split_first_chunk::<4>().ok_or_else(malformed)?;
    let len = u32::from_le_bytes(*len) as usize;
    if len > MAX_HEAD_BYTES {
        return Err(AbiError::new(
            AbiError::TOO_LARGE,
            format!("an HTTP call's head is over {MAX_HEAD_BYTES} bytes"),
        ));
    }
    if len > rest.len() {
        return Err(malformed());
    }
    Ok(rest.split_at(len))
}

/// Latin-1 text back to the bytes it stands for (as the request head sends header values).
fn latin1_bytes(text: &str, header: &str) -> Result<Vec<u8>, AbiError> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| {
            AbiError::new(
                AbiError::INVALID,
                format!("header {header}: a character above U+00FF"),
            )
        })
}

fn decode(arg: &[u8]) -> Result<OutboundRequest, AbiError> {
    let (head, body) = split_frame(arg)?;
    let head: Head = super::abi::decode_object(head, "HTTP call")?;
    let method = hyper::Method::from_bytes(head.method.as_bytes()).map_err(|_| {
        AbiError::new(
            AbiError::INVALID,
            format!("bad HTTP method {:?}", head.method),
        )
    })?;
    let headers = head
        .headers
        .into_iter()
        .map(|(name, value)| {
            let value = latin1_bytes(&value, &name)?;
            Ok((name, value))
        })
        .collect::<Result<_, AbiError>>()?;
    let timeout = match head.timeout {
        None => None,
        Some(seconds) if seconds.is_finite() && seconds >= 0.0 => {
            Some(Duration::from_secs_f64(seconds.min(86_400.0)))
        }
        Some(other) => {
            return Err(AbiError::new(
                AbiError::INVALID,
                format!("bad timeout {other}"),
            ));
        }
    };
    Ok(OutboundRequest {
        method,
        url: head.url,
        headers,
        body: bytes::Bytes::copy_from_slice(body),
        connection: head.connection,
        follow_redirects: head.follow_redirects,
        timeout,
    })
}

/// `PQ_OP_HTTP`: one outbound request, answered by `deadline`.
pub async fn call(
    capability: Option<&dyn EgressCapability>,
    deadline: Instant,
    arg: &[u8],
) -> Result<Vec<u8>, AbiError> {
    let request = decode(arg)?;
    let Some(capability) = capability else {
        return Err(AbiError::new(
            AbiError::UNAVAILABLE,
            "no outbound HTTP in this sandbox (it needs a tenant's endpoint)",
        ));
    };
    let response = capability
        .send(request, deadline)
        .await
        .map_err(|error| match error {
            EgressError::Denied(message) => AbiError::new(AbiError::DENIED, message),
            EgressError::Invalid(message) => AbiError::new(AbiError::INVALID, message),
            EgressError::NotFound(message) => AbiError::new(AbiError::NOT_FOUND, message),
            EgressError::TooLarge(message) => AbiError::new(AbiError::TOO_LARGE, message),
            EgressError::Network { reason, message } => AbiError::new(
                AbiError::NETWORK,
                serde_json::json!({"reason": reason, "message": message}).to_string(),
            ),
            error @ EgressError::Host(_) => {
                tracing::error!("outbound request failed on the host: {error:?}");
                AbiError::new(AbiError::HOST, "outbound HTTP failed on the host")
            }
        })?;
    let head = ResponseHead {
        status: response.status,
        reason: &response.reason,
        headers: response
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str(),
                    value.iter().map(|&b| char::from(b)).collect(),
                )
            })
            .collect(),
        url: &response.url,
        version: response.version,
    };
    let head = serde_json::to_vec(&head)
        .map_err(|e| AbiError::new(AbiError::HOST, format!("encoding a response head: {e}")))?;
    let mut out = Vec::with_capacity(4 + head.len() + response.body.len());
    out.extend_from_slice(&(head.len() as u32).to_le_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(&response.body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(head: &str, body: &[u8]) -> Vec<u8> {
        let mut arg = (head.len() as u32).to_le_bytes().to_vec();
        arg.extend_from_slice(head.as_bytes());
        arg.extend_from_slice(body);
        arg
    }

    #[test]
    fn a_well_formed_call_decodes() {
        let arg = frame(
            r#"{"method":"POST","url":"https://x.example/a","headers":[["x-a","\u00ff"]],"timeout":1.5}"#,
            b"body",
        );
        let request = decode(&arg).unwrap();
        assert_eq!(request.method, hyper::Method::POST);
        assert_eq!(request.headers, [("x-a".to_string(), vec![0xff])]);
        assert_eq!(&request.body[..], b"body");
        assert_eq!(request.timeout, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn hostile_frames_are_refused() {
        for arg in [
            vec![],
            vec![1, 0],
            (100u32).to_le_bytes().to_vec(),
            u32::MAX.to_le_bytes().to_vec(),
            frame("[]", b""),
            frame(r#"{"method":"GET"}"#, b""),
            frame(r#"{"method":"G T","url":"x"}"#, b""),
            frame(
                r#"{"method":"GET","url":"x","headers":[["a","\u0100"]]}"#,
                b"",
            ),
            frame(r#"{"method":"GET","url":"x","timeout":-1}"#, b""),
            frame(r#"{"method":"GET","url":"x","extra":1}"#, b""),
        ] {
            let code = decode(&arg).map(|_| ()).unwrap_err().code;
            assert!(
                code == AbiError::INVALID || code == AbiError::TOO_LARGE,
                "{arg:?}"
            );
        }
    }
}
