//! What a call received from the outside world, written down as it happens: the request, the
//! seed of its randomness and clock, and every capability's answer in order (written by the
//! wrappers in [`recorder`]). A secret's value is never written down, only its name; an outbound request only by its
//! method, its URL without the query, and a digest of the rest.

mod recorder;

pub use recorder::Recorder;

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::db::DbError;
use crate::egress::{NetworkReason, OutboundRequest};
use crate::host::GuestRequest;
use crate::sandbox::{CallSeed, Limits};

/// The recording format's version; a replay refuses another.
pub const RECORDING_VERSION: u32 = 1;
/// Largest sum of recorded answers, in bytes: past it the recording is marked incomplete and
/// is not kept (a replay could not answer what it lacks).
pub const MAX_RECORDED_BYTES: usize = 8 << 20;

/// Bytes, as base64 in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bytes(pub Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(Bytes)
            .map_err(serde::de::Error::custom)
    }
}

/// A failed call, ready to be replayed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recording {
    /// [`RECORDING_VERSION`].
    pub version: u32,
    /// The tenant.
    pub tenant: String,
    /// The endpoint.
    pub endpoint: String,
    /// Its version.
    pub endpoint_version: i32,
    /// The request's id (its log entry's).
    pub request_id: String,
    /// The status the client got.
    pub status: u16,
    /// Why the call failed, as its log entry says.
    pub error: Option<String>,
    /// The guest's traceback, if it raised.
    pub traceback: Option<String>,
    /// The script that ran.
    pub script: String,
    /// The limits it ran under (the tenant's caps applied).
    pub limits: Limits,
    /// The modules its snapshot imported (the tenant's preload list).
    pub preload: Vec<String>,
    /// Whether the endpoint's package set also held uploaded wheels or modules, which a
    /// replay on another machine does not have.
    pub uploaded_packages: bool,
    /// The hash of the package set the call ran with, when that set held uploaded wheels or
    /// modules: `pubfn replay` installs the same set, fetched from the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_set: Option<String>,
    /// The request the handler saw.
    pub request: RecordedRequest,
    /// The call's randomness and start time.
    pub seed: CallSeed,
    /// Every capability's answer, in the order the handler asked.
    pub calls: Vec<HostCall>,
}

/// The request as the guest saw it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// Method.
    pub method: String,
    /// Full URL.
    pub url: String,
    /// The path below the tenant.
    pub path: String,
    /// Raw query.
    pub query_string: String,
    /// Headers in order. Credentials are cut ([`redact_header`]).
    pub headers: Vec<(String, Bytes)>,
    /// Route parameters.
    pub path_params: BTreeMap<String, String>,
    /// Body.
    pub body: Bytes,
    /// `pq.DW_NAME`.
    pub warehouse: Option<String>,
    /// `request.remote_addr`.
    pub remote_addr: String,
}

impl RecordedRequest {
    /// `request` as it is kept: credentials in its headers cut.
    pub fn of(request: &GuestRequest) -> Self {
        RecordedRequest {
            method: request.method.clone(),
            url: request.url.clone(),
            path: request.path.clone(),
            query_string: request.query_string.clone(),
            headers: request
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), Bytes(redact_header(name, value))))
                .collect(),
            path_params: request.path_params.clone(),
            body: Bytes(request.body.clone()),
            warehouse: request.warehouse.clone(),
            remote_addr: request.remote_addr.clone(),
        }
    }

    /// The request to hand the guest again.
    pub fn to_guest(&self) -> GuestRequest {
        GuestRequest {
            method: self.method.clone(),
            url: self.url.clone(),
            path: self.path.clone(),
            query_string: self.query_string.clone(),
            headers: self
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), value.0.clone()))
                .collect(),
            path_params: self.path_params.clone(),
            body: self.body.0.clone(),
            warehouse: self.warehouse.clone(),
            remote_addr: self.remote_addr.clone(),
        }
    }
}

/// A header's value as a recording keeps it. A token in `Authorization` keeps its scheme and,
/// for a JWT, its header and claims (a handler may read them) but loses its signature, so the
/// recording holds no credential; `Cookie` and `Proxy-Authorization` values go entirely.
pub fn redact_header(name: &str, value: &[u8]) -> Vec<u8> {
    const CUT: &[u8] = b"[cut by pubfn]";
    if name.eq_ignore_ascii_case("cookie") || name.eq_ignore_ascii_case("proxy-authorization") {
        return CUT.to_vec();
    }
    if !name.eq_ignore_ascii_case("authorization") {
        return value.to_vec();
    }
    let text = String::from_utf8_lossy(value);
    let (scheme, credential) = text.trim().split_once(' ').unwrap_or(("", &text));
    let mut kept = if scheme.is_empty() {
        Vec::new()
    } else {
        format!("{scheme} ").into_bytes()
    };
    match credential.trim().rsplit_once('.') {
        Some((unsigned, _signature)) if unsigned.contains('.') => {
            kept.extend_from_slice(unsigned.as_bytes());
            kept.extend_from_slice(b".");
            kept.extend_from_slice(CUT);
        }
        _ => kept.extend_from_slice(CUT),
    }
    kept
}

/// How a secret was asked for: never its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretOutcome {
    /// The tenant had it.
    Found,
    /// The tenant had no secret of that name.
    NotFound,
    /// The store failed.
    Unavailable,
}

/// An outbound request's failure, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordedEgressError {
    /// Not allowed.
    Denied(String),
    /// Malformed.
    Invalid(String),
    /// No such stored connection.
    NotFound(String),
    /// Over the cap.
    TooLarge(String),
    /// The network failed.
    Network {
        /// Kind.
        reason: NetworkReason,
        /// Description.
        message: String,
    },
    /// The host failed.
    Host(String),
}

/// An outbound response, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedResponse {
    /// Status.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Headers in order.
    pub headers: Vec<(String, Bytes)>,
    /// The URL that answered.
    pub url: String,
    /// `HTTP/1.1` or `HTTP/2`.
    pub version: String,
    /// Body.
    pub body: Bytes,
}

/// One capability call and its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "capability", rename_all = "snake_case")]
pub enum HostCall {
    /// A database call (`pq.dbconnect(...)` and its methods).
    Db {
        /// The call, as the guest sent it.
        request: Value,
        /// Its JSON result, or its failure.
        outcome: Result<Bytes, DbError>,
    },
    /// `pq.get_secret(name)`: by name only.
    Secret {
        /// The name.
        name: String,
        /// Whether the tenant had it.
        outcome: SecretOutcome,
    },
    /// `pq.get_state()`.
    StateGet {
        /// The state, or that the store failed.
        outcome: Result<Value, String>,
    },
    /// `pq.set_state(patch)`.
    StateMerge {
        /// The patch.
        patch: Map<String, Value>,
        /// Done; too large (the size); or the store failed.
        outcome: Result<(), Option<usize>>,
    },
    /// One outbound HTTP request.
    Http {
        /// Its method.
        method: String,
        /// Its URL without the query (which may hold a key).
        url: String,
        /// SHA-256 of its method, URL, connection, headers and body: what a replay's request
        /// must match, without the recording holding them.
        digest: String,
        /// The response, or the failure.
        outcome: Result<RecordedResponse, RecordedEgressError>,
    },
}

/// What identifies an outbound request in a recording: see [`HostCall::Http`].
pub fn http_key(request: &OutboundRequest) -> (String, String, String) {
    let mut digest = Sha256::new();
    for part in [
        request.method.as_str().as_bytes(),
        request.url.as_bytes(),
        request.connection.as_deref().unwrap_or("").as_bytes(),
    ] {
        digest.update((part.len() as u64).to_le_bytes());
        digest.update(part);
    }
    for (name, value) in &request.headers {
        for part in [name.as_bytes(), value.as_slice()] {
            digest.update((part.len() as u64).to_le_bytes());
            digest.update(part);
        }
    }
    digest.update(&request.body);
    let url = request
        .url
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .to_string();
    (
        request.method.to_string(),
        url,
        hex::encode(digest.finalize()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_cut_from_headers_and_a_jwt_keeps_its_claims() {
        let jwt = b"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        assert_eq!(
            redact_header("Authorization", jwt),
            b"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.[cut by pubfn]"
        );
        assert_eq!(
            redact_header("authorization", b"Basic dXNlcjpwYXNz"),
            b"Basic [cut by pubfn]"
        );
        assert_eq!(redact_header("authorization", b"opaque"), b"[cut by pubfn]");
        assert_eq!(redact_header("Cookie", b"session=abc"), b"[cut by pubfn]");
        assert_eq!(redact_header("x-trace", b"abc"), b"abc");
    }

    #[test]
    fn bytes_and_calls_survive_their_json() {
        let call = HostCall::Http {
            method: "GET".into(),
            url: "https://x/y".into(),
            digest: "00".into(),
            outcome: Ok(RecordedResponse {
                status: 200,
                reason: "OK".into(),
                headers: vec![("a".into(), Bytes(vec![0, 255]))],
                url: "https://x/y".into(),
                version: "HTTP/1.1".into(),
                body: Bytes(b"\x00\x01binary".to_vec()),
            }),
        };
        let json = serde_json::to_string(&call).unwrap();
        assert_eq!(serde_json::from_str::<HostCall>(&json).unwrap(), call);
        let db = HostCall::Db {
            request: serde_json::json!({"op": "connect", "connection": "dw"}),
            outcome: Err(DbError::Sql {
                sqlstate: "42P01".into(),
                message: "no table".into(),
            }),
        };
        let json = serde_json::to_string(&db).unwrap();
        assert_eq!(serde_json::from_str::<HostCall>(&json).unwrap(), db);
    }
}
