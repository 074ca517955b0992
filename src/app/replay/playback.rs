//! Capabilities that answer from a [`Recording`] instead of the world: a replay touches no
//! database, no network and no state. A call is answered by the first recorded call not yet
//! used that asked the same thing, so a fixed script may skip calls the failing one made.
//! Failing that, by the first that asked of the same table, query or URL with other values
//! (a parameter or a signed header that holds the time), noted as an approximation. A call the
//! recording has no answer for fails in the guest and is reported as a divergence.
//! Secrets come from the replay's caller (the command line, or the server again), never from
//! the recording.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Map, Value};

use super::recording::{HostCall, RecordedEgressError, Recording, SecretOutcome, http_key};
use crate::db::{DatabaseCapability, DbError, DbRequest};
use crate::egress::{EgressCapability, EgressError, OutboundRequest, OutboundResponse};
use crate::host::state::StateError;
use crate::host::{Capabilities, SecretError, SecretSource, StateStore};

/// The recorded answers of one call, and what the replay asked that they do not hold.
pub struct Playback {
    calls: Vec<HostCall>,
    state: Mutex<PlaybackState>,
    secrets: HashMap<String, String>,
}

#[derive(Default)]
struct PlaybackState {
    used: Vec<bool>,
    divergences: Vec<String>,
    approximations: Vec<String>,
}

impl Playback {
    /// Answers from `recording`'s calls; secret values from `secrets`.
    pub fn new(recording: &Recording, secrets: HashMap<String, String>) -> Arc<Self> {
        Arc::new(Playback {
            state: Mutex::new(PlaybackState {
                used: vec![false; recording.calls.len()],
                divergences: Vec::new(),
                approximations: Vec::new(),
            }),
            calls: recording.calls.clone(),
            secrets,
        })
    }

    /// The capabilities a replay's call gets.
    pub fn capabilities(self: &Arc<Self>) -> Capabilities {
        Capabilities {
            db: Some(Arc::new(Answering(self.clone()))),
            secrets: Some(Arc::new(Answering(self.clone()))),
            state: Some(Arc::new(Answering(self.clone()))),
            egress: Some(Arc::new(Answering(self.clone()))),
        }
    }

    /// What the replay asked for that the recording could not answer, in order.
    pub fn divergences(&self) -> Vec<String> {
        self.lock().divergences.clone()
    }

    /// Calls answered by a recorded call that asked the same of other values, in order.
    pub fn approximations(&self) -> Vec<String> {
        self.lock().approximations.clone()
    }

    /// Recorded calls the replay never asked for.
    pub fn unused(&self) -> usize {
        self.lock().used.iter().filter(|used| !**used).count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PlaybackState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The first unused recorded call `exact` accepts, else the first `similar` accepts (an
    /// approximation, noted), marked used; else the divergence `asked` is noted and `None`
    /// returned.
    fn answer(
        &self,
        exact: impl Fn(&HostCall) -> bool,
        similar: impl Fn(&HostCall) -> bool,
        asked: String,
    ) -> Option<&HostCall> {
        let mut state = self.lock();
        let unused = |state: &PlaybackState, test: &dyn Fn(&HostCall) -> bool| {
            (0..self.calls.len()).find(|&i| !state.used[i] && test(&self.calls[i]))
        };
        let found = match unused(&state, &exact) {
            Some(i) => Some(i),
            None => unused(&state, &similar).inspect(|_| {
                state.approximations.push(format!(
                    "{asked}: answered by a recorded call with other values"
                ))
            }),
        };
        match found {
            Some(i) => {
                state.used[i] = true;
                Some(&self.calls[i])
            }
            None => {
                state.divergences.push(asked);
                None
            }
        }
    }
}

/// A database call without its values (parameters, filters, records, keys): what a call with
/// other values still shares with it.
fn db_shape(request: &Value) -> Value {
    let mut shape = request.clone();
    if let Some(object) = shape.as_object_mut() {
        for key in ["record", "pk", "pk_columns", "params"] {
            object.remove(key);
        }
        if let Some(options) = object.get_mut("options").and_then(Value::as_object_mut) {
            for key in ["where", "params", "limit", "offset"] {
                options.remove(key);
            }
        }
    }
    shape
}

/// Never: for calls that have no values apart from what identifies them.
fn nothing_similar(_: &HostCall) -> bool {
    false
}

/// The message a guest gets for a call the recording cannot answer.
fn not_recorded(asked: &str) -> String {
    format!("replay: the recorded call made no such request ({asked})")
}

struct Answering(Arc<Playback>);

#[async_trait::async_trait]
impl DatabaseCapability for Answering {
    async fn call(&self, request: &DbRequest, _deadline: Instant) -> Result<Vec<u8>, DbError> {
        let asked = serde_json::to_value(request).unwrap_or(Value::Null);
        let describe = format!("database call {asked}");
        let shape = db_shape(&asked);
        let answer = self.0.answer(
            |call| matches!(call, HostCall::Db { request, .. } if *request == asked),
            |call| matches!(call, HostCall::Db { request, .. } if db_shape(request) == shape),
            describe.clone(),
        );
        match answer {
            Some(HostCall::Db { outcome, .. }) => outcome.clone().map(|bytes| bytes.0),
            _ => Err(DbError::Invalid(not_recorded(&describe))),
        }
    }
}

#[async_trait::async_trait]
impl SecretSource for Answering {
    async fn secret(&self, name: &str) -> Result<String, SecretError> {
        let describe = format!("secret {name:?}");
        let answer = self.0.answer(
            |call| matches!(call, HostCall::Secret { name: n, .. } if n == name),
            nothing_similar,
            describe.clone(),
        );
        match answer {
            Some(HostCall::Secret { outcome, .. }) => match outcome {
                SecretOutcome::NotFound => Err(SecretError::NotFound),
                SecretOutcome::Unavailable => {
                    Err(SecretError::Unavailable("unavailable when recorded".into()))
                }
                SecretOutcome::Found => match self.0.secrets.get(name) {
                    Some(value) => Ok(value.clone()),
                    None => {
                        self.0.lock().divergences.push(format!(
                            "secret {name:?}: no value given (--secret {name}=VALUE)"
                        ));
                        Err(SecretError::Unavailable("no value given".into()))
                    }
                },
            },
            _ => Err(SecretError::Unavailable(not_recorded(&describe).into())),
        }
    }
}

#[async_trait::async_trait]
impl StateStore for Answering {
    async fn get(&self) -> Result<Value, crate::BoxError> {
        let describe = "pq.get_state()".to_string();
        let exact = |call: &HostCall| matches!(call, HostCall::StateGet { .. });
        match self.0.answer(exact, nothing_similar, describe.clone()) {
            Some(HostCall::StateGet { outcome }) => outcome.clone().map_err(Into::into),
            _ => Err(not_recorded(&describe).into()),
        }
    }

    async fn merge(&self, patch: Map<String, Value>) -> Result<(), StateError> {
        let describe = format!("pq.set_state({})", Value::Object(patch.clone()));
        let answer = self.0.answer(
            |call| matches!(call, HostCall::StateMerge { patch: p, .. } if *p == patch),
            |call| matches!(call, HostCall::StateMerge { patch: p, .. } if p.keys().eq(patch.keys())),
            describe.clone(),
        );
        match answer {
            Some(HostCall::StateMerge { outcome, .. }) => match outcome {
                Ok(()) => Ok(()),
                Err(Some(size)) => Err(StateError::TooLarge(*size)),
                Err(None) => Err(StateError::Unavailable("unavailable when recorded".into())),
            },
            _ => Err(StateError::Unavailable(not_recorded(&describe).into())),
        }
    }
}

#[async_trait::async_trait]
impl EgressCapability for Answering {
    async fn send(
        &self,
        request: OutboundRequest,
        _deadline: Instant,
    ) -> Result<OutboundResponse, EgressError> {
        let (method, url, digest) = http_key(&request);
        let describe = format!("{method} {url}");
        let answer = self.0.answer(
            |call| matches!(call, HostCall::Http { digest: d, .. } if *d == digest),
            |call| matches!(call, HostCall::Http { method: m, url: u, .. } if *m == method && *u == url),
            describe.clone(),
        );
        let Some(HostCall::Http { outcome, .. }) = answer else {
            return Err(EgressError::Denied(not_recorded(&describe)));
        };
        match outcome {
            Ok(response) => Ok(OutboundResponse {
                status: response.status,
                reason: response.reason.clone(),
                headers: response
                    .headers
                    .iter()
                    .map(|(n, v)| (n.clone(), v.0.clone()))
                    .collect(),
                url: response.url.clone(),
                version: if response.version == "HTTP/2" {
                    "HTTP/2"
                } else {
                    "HTTP/1.1"
                },
                body: response.body.0.clone().into(),
            }),
            Err(error) => Err(match error.clone() {
                RecordedEgressError::Denied(m) => EgressError::Denied(m),
                RecordedEgressError::Invalid(m) => EgressError::Invalid(m),
                RecordedEgressError::NotFound(m) => EgressError::NotFound(m),
                RecordedEgressError::TooLarge(m) => EgressError::TooLarge(m),
                RecordedEgressError::Network { reason, message } => {
                    EgressError::Network { reason, message }
                }
                RecordedEgressError::Host(m) => EgressError::Host(m.into()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::replay::recording::{Bytes, RECORDING_VERSION, RecordedRequest};
    use crate::sandbox::{CallSeed, Limits};

    fn recording(calls: Vec<HostCall>) -> Recording {
        Recording {
            version: RECORDING_VERSION,
            tenant: "t".into(),
            endpoint: "e".into(),
            endpoint_version: 1,
            request_id: "r".into(),
            status: 500,
            error: None,
            traceback: None,
            script: String::new(),
            limits: Limits::default(),
            preload: Vec::new(),
            uploaded_packages: false,
            package_set: None,
            request: RecordedRequest::of(&Default::default()),
            seed: CallSeed::fresh(),
            calls,
        }
    }

    fn db(json: &str) -> DbRequest {
        serde_json::from_str(json).unwrap()
    }

    const CONNECT: &str = r#"{"op":"connect","connection":"dw"}"#;
    const FETCH: &str = r#"{"op":"fetch","connection":"dw","table":"accounts"}"#;

    #[tokio::test]
    async fn answers_come_from_the_recording_by_what_was_asked_and_the_rest_diverges() {
        let recorded = |json: &str, answer: &[u8]| HostCall::Db {
            request: serde_json::to_value(db(json)).unwrap(),
            outcome: Ok(Bytes(answer.to_vec())),
        };
        let playback = Playback::new(
            &recording(vec![
                recorded(CONNECT, b"connected"),
                recorded(FETCH, b"rows"),
                HostCall::Secret {
                    name: "key".into(),
                    outcome: SecretOutcome::Found,
                },
                HostCall::Secret {
                    name: "gone".into(),
                    outcome: SecretOutcome::NotFound,
                },
            ]),
            HashMap::from([("key".to_string(), "value".to_string())]),
        );
        let capabilities = playback.capabilities();
        let (database, secrets) = (capabilities.db.unwrap(), capabilities.secrets.unwrap());
        let deadline = Instant::now();
        // A fixed script may skip the connect: the fetch is answered all the same.
        assert_eq!(database.call(&db(FETCH), deadline).await.unwrap(), b"rows");
        assert_eq!(playback.unused(), 3);
        // Asked twice, recorded once: the second has no answer.
        assert!(matches!(
            database.call(&db(FETCH), deadline).await,
            Err(DbError::Invalid(m)) if m.starts_with("replay:")
        ));
        assert_eq!(secrets.secret("key").await.unwrap(), "value");
        assert!(matches!(
            secrets.secret("gone").await,
            Err(SecretError::NotFound)
        ));
        // Never recorded: no state, no HTTP answer.
        assert!(capabilities.state.unwrap().get().await.is_err());
        let request = OutboundRequest {
            method: hyper::Method::GET,
            url: "https://example.com/x?key=1".into(),
            headers: Vec::new(),
            body: Default::default(),
            connection: None,
            follow_redirects: false,
            timeout: None,
        };
        let sent = capabilities.egress.unwrap().send(request, deadline).await;
        assert!(matches!(sent, Err(EgressError::Denied(_))));
        // The same table with another filter: answered by the nearest recorded call.
        let other_filter =
            r#"{"op":"fetch","connection":"dw","table":"accounts","options":{"where":{"id":2}}}"#;
        let playback2 = Playback::new(&recording(vec![recorded(FETCH, b"rows")]), HashMap::new());
        let approximated = playback2.capabilities().db.unwrap();
        assert_eq!(
            approximated
                .call(&db(other_filter), deadline)
                .await
                .unwrap(),
            b"rows"
        );
        assert_eq!(playback2.approximations().len(), 1);
        assert!(playback2.divergences().is_empty());
        let divergences = playback.divergences();
        assert_eq!(divergences.len(), 3, "{divergences:?}");
        assert!(divergences[0].contains("accounts"), "{divergences:?}");
        assert_eq!(divergences[2], "GET https://example.com/x");
        assert_eq!(playback.unused(), 1, "the connect");
    }

    #[tokio::test]
    async fn a_secret_read_when_recorded_but_not_given_is_a_divergence() {
        let playback = Playback::new(
            &recording(vec![HostCall::Secret {
                name: "key".into(),
                outcome: SecretOutcome::Found,
            }]),
            HashMap::new(),
        );
        let secrets = playback.capabilities().secrets.unwrap();
        assert!(secrets.secret("key").await.is_err());
        assert!(playback.divergences()[0].contains("--secret key=VALUE"));
    }
}
