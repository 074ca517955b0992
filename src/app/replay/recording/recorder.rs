//! The wrappers that write a call's answers down: they sit between the sandbox and the
//! tenant's real capabilities and change nothing they pass on.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Map, Value};

use super::{
    Bytes, HostCall, MAX_RECORDED_BYTES, RecordedEgressError, RecordedResponse, SecretOutcome,
    http_key,
};
use crate::db::{DatabaseCapability, DbError, DbRequest};
use crate::egress::{EgressCapability, EgressError, OutboundRequest, OutboundResponse};
use crate::host::state::StateError;
use crate::host::{SecretError, SecretSource, StateStore};

/// The calls of one handler run, as they happen.
#[derive(Clone, Default)]
pub struct Recorder(Arc<Mutex<RecorderState>>);

#[derive(Default)]
struct RecorderState {
    calls: Vec<HostCall>,
    bytes: usize,
    overflowed: bool,
}

impl Recorder {
    /// Records the call `make` builds, if `weight` more bytes (its answer's size, near
    /// enough) fit: a result too large is never copied.
    fn push(&self, weight: usize, make: impl FnOnce() -> HostCall) {
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if state.overflowed {
            return;
        }
        if state.bytes + weight > MAX_RECORDED_BYTES {
            state.overflowed = true;
            state.calls = Vec::new();
            return;
        }
        state.bytes += weight;
        state.calls.push(make());
    }

    /// The calls so far; `None` if they were over [`MAX_RECORDED_BYTES`].
    pub fn calls(&self) -> Option<Vec<HostCall>> {
        let state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        (!state.overflowed).then(|| state.calls.clone())
    }

    /// `inner`, with its calls recorded here.
    pub fn db(&self, inner: Arc<dyn DatabaseCapability>) -> Arc<dyn DatabaseCapability> {
        Arc::new(Recorded {
            inner,
            recorder: self.clone(),
        })
    }

    /// `inner`, with its calls recorded here (names and outcomes only).
    pub fn secrets(&self, inner: Arc<dyn SecretSource>) -> Arc<dyn SecretSource> {
        Arc::new(Recorded {
            inner,
            recorder: self.clone(),
        })
    }

    /// `inner`, with its calls recorded here.
    pub fn state(&self, inner: Arc<dyn StateStore>) -> Arc<dyn StateStore> {
        Arc::new(Recorded {
            inner,
            recorder: self.clone(),
        })
    }

    /// `inner`, with its calls recorded here.
    pub fn egress(&self, inner: Arc<dyn EgressCapability>) -> Arc<dyn EgressCapability> {
        Arc::new(Recorded {
            inner,
            recorder: self.clone(),
        })
    }
}

struct Recorded<T: ?Sized> {
    inner: Arc<T>,
    recorder: Recorder,
}

#[async_trait::async_trait]
impl DatabaseCapability for Recorded<dyn DatabaseCapability> {
    async fn call(&self, request: &DbRequest, deadline: Instant) -> Result<Vec<u8>, DbError> {
        let outcome = self.inner.call(request, deadline).await;
        let weight = 256 + outcome.as_ref().map_or(0, Vec::len);
        self.recorder.push(weight, || HostCall::Db {
            request: serde_json::to_value(request).unwrap_or(Value::Null),
            outcome: outcome.clone().map(Bytes),
        });
        outcome
    }
}

#[async_trait::async_trait]
impl SecretSource for Recorded<dyn SecretSource> {
    async fn secret(&self, name: &str) -> Result<String, SecretError> {
        let value = self.inner.secret(name).await;
        let outcome = match &value {
            Ok(_) => SecretOutcome::Found,
            Err(SecretError::NotFound) => SecretOutcome::NotFound,
            Err(SecretError::Unavailable(_)) => SecretOutcome::Unavailable,
        };
        self.recorder.push(name.len() + 32, || HostCall::Secret {
            name: name.to_string(),
            outcome,
        });
        value
    }
}

#[async_trait::async_trait]
impl StateStore for Recorded<dyn StateStore> {
    async fn get(&self) -> Result<Value, crate::BoxError> {
        let state = self.inner.get().await;
        // A state is at most `MAX_STATE_BYTES` of JSON.
        self.recorder
            .push(crate::host::state::MAX_STATE_BYTES, || HostCall::StateGet {
                outcome: state.as_ref().map(Value::clone).map_err(|e| e.to_string()),
            });
        state
    }

    async fn merge(&self, patch: Map<String, Value>) -> Result<(), StateError> {
        let outcome = self.inner.merge(patch.clone()).await;
        self.recorder.push(crate::host::state::MAX_STATE_BYTES, || {
            HostCall::StateMerge {
                patch,
                outcome: match &outcome {
                    Ok(()) => Ok(()),
                    Err(StateError::TooLarge(size)) => Err(Some(*size)),
                    Err(StateError::Unavailable(_)) => Err(None),
                },
            }
        });
        outcome
    }
}

#[async_trait::async_trait]
impl EgressCapability for Recorded<dyn EgressCapability> {
    async fn send(
        &self,
        request: OutboundRequest,
        deadline: Instant,
    ) -> Result<OutboundResponse, EgressError> {
        let (method, url, digest) = http_key(&request);
        let outcome = self.inner.send(request, deadline).await;
        let weight = 512
            + outcome.as_ref().map_or(0, |r| {
                r.body.len()
                    + r.headers
                        .iter()
                        .map(|(n, v)| n.len() + v.len())
                        .sum::<usize>()
            });
        let record = || HostCall::Http {
            method,
            url,
            digest,
            outcome: match &outcome {
                Ok(response) => Ok(RecordedResponse {
                    status: response.status,
                    reason: response.reason.clone(),
                    headers: response
                        .headers
                        .iter()
                        .map(|(n, v)| (n.clone(), Bytes(v.clone())))
                        .collect(),
                    url: response.url.clone(),
                    version: response.version.to_string(),
                    body: Bytes(response.body.to_vec()),
                }),
                Err(error) => Err(match error {
                    EgressError::Denied(m) => RecordedEgressError::Denied(m.clone()),
                    EgressError::Invalid(m) => RecordedEgressError::Invalid(m.clone()),
                    EgressError::NotFound(m) => RecordedEgressError::NotFound(m.clone()),
                    EgressError::TooLarge(m) => RecordedEgressError::TooLarge(m.clone()),
                    EgressError::Network { reason, message } => RecordedEgressError::Network {
                        reason: *reason,
                        message: message.clone(),
                    },
                    EgressError::Host(e) => RecordedEgressError::Host(e.to_string()),
                }),
            },
        };
        self.recorder.push(weight, record);
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recording_over_its_budget_keeps_nothing() {
        let recorder = Recorder::default();
        let secret = || HostCall::Secret {
            name: "a".into(),
            outcome: SecretOutcome::Found,
        };
        recorder.push(40, secret);
        assert_eq!(recorder.calls().unwrap(), [secret()]);
        recorder.push(MAX_RECORDED_BYTES, || unreachable!("too large to build"));
        assert!(recorder.calls().is_none());
        recorder.push(40, secret);
        assert!(
            recorder.calls().is_none(),
            "a recording with a hole is no recording"
        );
    }
}
