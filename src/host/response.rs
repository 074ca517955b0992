//! The response capability: the guest sends its status, headers and body.

use serde::Deserialize;

use super::AbiError;

/// Caps on what a guest may answer.
#[derive(Debug, Clone, Copy)]
pub struct ResponseLimits {
    /// Largest body, in bytes.
    pub max_body_bytes: usize,
    /// Most headers.
    pub max_headers: usize,
    /// Largest name + value of all headers together, in bytes.
    pub max_header_bytes: usize,
}

impl Default for ResponseLimits {
    fn default() -> Self {
        ResponseLimits {
            max_body_bytes: 8 << 20,
            max_headers: 64,
            max_header_bytes: 32 << 10,
        }
    }
}

/// Headers that frame a message or belong to one connection (RFC 9110 §7.6.1, RFC 9113
/// §8.2.2). They are the server's to write: a handler that set `content-length` (or
/// `transfer-encoding`) could end its response early and have the rest of its body read as
/// the next response on a kept-alive connection, and `connection`/`upgrade` could take the
/// connection over. `proxy-*` names are matched by prefix.
pub const FORBIDDEN_HEADERS: &[&str] = &[
    "connection",
    "content-length",
    "keep-alive",
    "proxy-",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
];

/// Whether a handler may set header `name` (lower-case).
pub fn is_forbidden_header(name: &str) -> bool {
    FORBIDDEN_HEADERS
        .iter()
        .any(|forbidden| match forbidden.strip_suffix('-') {
            Some(_) => name.starts_with(forbidden),
            None => name == *forbidden,
        })
}

/// What the guest answered: validated, so the HTTP layer can send it as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestResponse {
    /// HTTP status, 200..=599 (an informational status would make the client expect another
    /// response on the connection, or switch protocols).
    pub status: u16,
    /// Header names (lower-case) and values; both valid for HTTP.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// The response slice of the host state.
#[derive(Debug)]
pub struct ResponseSlot {
    limits: ResponseLimits,
    head: Option<(u16, Vec<(String, String)>)>,
    body: Option<Vec<u8>>,
}

impl ResponseSlot {
    /// The largest body this slot takes, in bytes.
    pub fn body_limit(&self) -> usize {
        self.limits.max_body_bytes
    }

    /// An empty slot enforcing `limits`.
    pub fn new(limits: ResponseLimits) -> Self {
        ResponseSlot {
            limits,
            head: None,
            body: None,
        }
    }

    /// Forgets any response, for the next call of a warm instance.
    pub fn clear(&mut self) {
        self.head = None;
        self.body = None;
    }

    /// The complete response, if the guest sent both its head and its body.
    pub fn take(&mut self) -> Option<GuestResponse> {
        match (self.head.take(), self.body.take()) {
            (Some((status, headers)), Some(body)) => Some(GuestResponse {
                status,
                headers,
                body,
            }),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Head {
    status: u16,
    headers: Vec<(String, String)>,
}

/// `PQ_OP_RESPONSE_HEAD`.
pub fn set_head(slot: &mut ResponseSlot, arg: &[u8]) -> Result<(), AbiError> {
    if slot.head.is_some() {
        return Err(AbiError::new(
            AbiError::STATE,
            "the response head was already sent",
        ));
    }
    let head: Head = super::abi::decode_object(arg, "response head")?;
    if !(200..=599).contains(&head.status) {
        return Err(invalid(format!(
            "status {} is not between 200 and 599 (informational statuses are the server's)",
            head.status
        )));
    }
    if head.headers.len() > slot.limits.max_headers {
        return Err(AbiError::new(
            AbiError::TOO_LARGE,
            format!(
                "{} response headers; at most {}",
                head.headers.len(),
                slot.limits.max_headers
            ),
        ));
    }
    let total: usize = head.headers.iter().map(|(n, v)| n.len() + v.len()).sum();
    if total > slot.limits.max_header_bytes {
        return Err(AbiError::new(
            AbiError::TOO_LARGE,
            "response headers are too large",
        ));
    }
    let mut headers = Vec::with_capacity(head.headers.len());
    for (name, value) in head.headers {
        if !is_token(&name) {
            return Err(invalid(format!("{name:?} is not a valid header name")));
        }
        if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(invalid(format!(
                "the value of header {name:?} holds control characters"
            )));
        }
        let name = name.to_ascii_lowercase();
        if is_forbidden_header(&name) {
            return Err(invalid(format!(
                "header {name:?} frames the message or belongs to the connection: the server \
                 sets it, a handler may not"
            )));
        }
        headers.push((name, value));
    }
    slot.head = Some((head.status, headers));
    Ok(())
}

/// `PQ_OP_RESPONSE_BODY`.
pub fn set_body(slot: &mut ResponseSlot, body: Vec<u8>) -> Result<(), AbiError> {
    if slot.body.is_some() {
        return Err(AbiError::new(
            AbiError::STATE,
            "the response body was already sent",
        ));
    }
    if body.len() > slot.limits.max_body_bytes {
        return Err(AbiError::new(
            AbiError::TOO_LARGE,
            format!(
                "response body of {} bytes is over the {}-byte limit",
                body.len(),
                slot.limits.max_body_bytes
            ),
        ));
    }
    slot.body = Some(body);
    Ok(())
}

fn invalid(message: String) -> AbiError {
    AbiError::new(AbiError::INVALID, message)
}

/// RFC 9110 `token`: the characters allowed in a header name.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot() -> ResponseSlot {
        ResponseSlot::new(ResponseLimits::default())
    }

    #[test]
    fn header_injection_is_refused() {
        let arg = br#"{"status":200,"headers":[["x-a","1\r\nset-cookie: evil"]]}"#;
        assert_eq!(
            set_head(&mut slot(), arg).unwrap_err().code,
            AbiError::INVALID
        );
        let arg = br#"{"status":200,"headers":[["bad name","1"]]}"#;
        assert_eq!(
            set_head(&mut slot(), arg).unwrap_err().code,
            AbiError::INVALID
        );
    }

    #[test]
    fn status_out_of_range_is_refused() {
        for status in [99, 100, 101, 103, 199, 600] {
            let arg = format!(r#"{{"status":{status},"headers":[]}}"#);
            assert_eq!(
                set_head(&mut slot(), arg.as_bytes()).unwrap_err().code,
                AbiError::INVALID,
                "{status}"
            );
        }
        set_head(&mut slot(), br#"{"status":200,"headers":[]}"#).unwrap();
    }

    #[test]
    fn framing_and_connection_headers_are_refused() {
        for name in [
            "Content-Length",
            "transfer-encoding",
            "Connection",
            "upgrade",
            "keep-alive",
            "TE",
            "trailer",
            "proxy-authenticate",
            "Proxy-Connection",
        ] {
            let arg = format!(r#"{{"status":200,"headers":[["{name}","2"]]}}"#);
            let error = set_head(&mut slot(), arg.as_bytes()).unwrap_err();
            assert_eq!(error.code, AbiError::INVALID, "{name}");
            assert!(
                error.message.contains(&name.to_ascii_lowercase()),
                "names the header: {}",
                error.message
            );
        }
        for allowed in [
            "content-type",
            "x-te",
            "tea",
            "proxyish",
            "content-language",
        ] {
            let arg = format!(r#"{{"status":200,"headers":[["{allowed}","1"]]}}"#);
            set_head(&mut slot(), arg.as_bytes()).unwrap();
        }
    }

    #[test]
    fn a_second_head_is_refused() {
        let mut slot = slot();
        let arg = br#"{"status":200,"headers":[["Content-Type","text/plain"]]}"#;
        set_head(&mut slot, arg).unwrap();
        assert_eq!(set_head(&mut slot, arg).unwrap_err().code, AbiError::STATE);
        set_body(&mut slot, b"hi".to_vec()).unwrap();
        let response = slot.take().unwrap();
        assert_eq!(
            response.headers,
            vec![("content-type".into(), "text/plain".into())]
        );
    }

    #[test]
    fn oversized_body_is_refused() {
        let mut slot = ResponseSlot::new(ResponseLimits {
            max_body_bytes: 3,
            ..Default::default()
        });
        assert_eq!(
            set_body(&mut slot, vec![0; 4]).unwrap_err().code,
            AbiError::TOO_LARGE
        );
    }
}

#[cfg(test)]
mod head_tests {
    use super::*;

    #[test]
    fn head_without_headers_is_refused() {
        let mut slot = ResponseSlot::new(ResponseLimits::default());
        assert_eq!(
            set_head(&mut slot, br#"{"status": 200}"#).unwrap_err().code,
            AbiError::INVALID
        );
    }
}
