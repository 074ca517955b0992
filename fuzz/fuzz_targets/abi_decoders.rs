//! Every host-side decoder of guest-provided bytes (guest-sdk/ABI.md): the first byte picks
//! the decoder, the rest is the argument as a guest would pass it to `pq.host_call`.
//!
//! A guest is hostile: whatever it passes, the host answers with one of the `PQ_E_*` codes and
//! never panics. Where the host promises more than that (a response head it accepted can be
//! sent as HTTP as it is; state read back is the state set), the promise is checked too.
//!
//! Selectors, as ASCII digits so that the seed corpus stays readable (`'0'` is 48, 48 % 8 = 0):
//! `0` response head, `1` response body, `2` error report, `3` database call (decoded, then
//! planned into SQL without a database), `4` secret name and state, `5` `%s` placeholders,
//! `6` identifiers, `7` a JSON value bound as a parameter of every type.

#![no_main]

#[path = "abi_decoders/db.rs"]
mod db;

use std::future::Future;
use std::pin::pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use libfuzzer_sys::fuzz_target;
use pubfn::host::response::{ResponseLimits, ResponseSlot, set_body, set_head};
use pubfn::BoxError;
use pubfn::host::secret::{SecretError, SecretSource};
use pubfn::host::state::{StateError, StateStore};
use pubfn::host::{AbiError, error_report, secret, state};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, arg)) = data.split_first() else {
        return;
    };
    match selector % 8 {
        0 => response_head(arg),
        1 => response_body(arg),
        2 => {
            if let Err(error) = error_report::decode(arg) {
                refused(&error);
            }
        }
        3 => db::call(arg),
        4 => secret_and_state(arg),
        5 => db::placeholders(arg),
        6 => db::identifiers(arg),
        _ => db::params(arg),
    }
});

/// Runs a host call's future to completion. None of them waits on anything here (no
/// capability does I/O in this target), so one poll must finish it.
pub fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a host call without I/O did not finish"),
    }
}

/// A refused call carries one of the ABI's error codes and a message for the guest.
pub fn refused(error: &AbiError) {
    assert!(
        (AbiError::NOT_FOUND..=AbiError::FAULT).contains(&error.code),
        "not a PQ_E_* code: {error:?}"
    );
    assert!(!error.message.is_empty(), "no message: {error:?}");
}

fn response_head(arg: &[u8]) {
    let mut slot = ResponseSlot::new(ResponseLimits::default());
    if let Err(error) = set_head(&mut slot, arg) {
        return refused(&error);
    }
    let again = set_head(&mut slot, arg).expect_err("a second head is refused");
    assert_eq!(again.code, AbiError::STATE);
    set_body(&mut slot, Vec::new()).expect("an empty body fits");
    let response = slot.take().expect("head and body were both sent");
    // http/data.rs builds the client's response from these and treats a failure as a bug.
    http::StatusCode::from_u16(response.status).expect("an accepted status is valid HTTP");
    for (name, value) in &response.headers {
        http::HeaderName::from_bytes(name.as_bytes()).expect("an accepted header name is valid");
        http::HeaderValue::from_str(value).expect("an accepted header value is valid");
    }
}

fn response_body(arg: &[u8]) {
    const LIMIT: usize = 64;
    let mut slot = ResponseSlot::new(ResponseLimits {
        max_body_bytes: LIMIT,
        ..ResponseLimits::default()
    });
    match set_body(&mut slot, arg.to_vec()) {
        Ok(()) => assert!(arg.len() <= LIMIT),
        Err(error) => {
            refused(&error);
            assert_eq!(error.code, AbiError::TOO_LARGE);
        }
    }
}

/// Secrets named `KEY` exist; every other name does not.
struct Secrets;

#[async_trait::async_trait]
impl SecretSource for Secrets {
    async fn secret(&self, name: &str) -> Result<String, SecretError> {
        (name == "KEY")
            .then(|| "value".to_string())
            .ok_or(SecretError::NotFound)
    }
}

/// An endpoint's state, kept in memory.
#[derive(Default)]
struct State(Mutex<Value>);

#[async_trait::async_trait]
impl StateStore for State {
    async fn get(&self) -> Result<Value, BoxError> {
        Ok(self.0.lock().unwrap().clone())
    }

    async fn merge(&self, patch: serde_json::Map<String, Value>) -> Result<(), StateError> {
        let mut state = self.0.lock().unwrap();
        if !state.is_object() {
            *state = Value::Object(Default::default());
        }
        state.as_object_mut().unwrap().extend(patch);
        Ok(())
    }
}

fn secret_and_state(arg: &[u8]) {
    for source in [None, Some(&Secrets as &dyn SecretSource)] {
        match ready(secret::get(source, arg)) {
            Ok(value) => assert_eq!(value, b"value"),
            Err(error) => refused(&error),
        }
    }
    let store = State::default();
    assert!(ready(state::set(None, arg)).is_err());
    match ready(state::set(Some(&store), arg)) {
        Ok(_) => {
            // What the guest reads back is the object it set.
            let back = ready(state::get(Some(&store))).expect("state was set");
            let sent: Value = serde_json::from_slice(arg).expect("accepted state is JSON");
            let back: Value = serde_json::from_slice(&back).expect("state reads as JSON");
            assert!(same(&sent, &back), "state set {sent} read back as {back}");
        }
        Err(error) => refused(&error),
    }
}

/// Equal JSON, but for the last bit of a float: serde_json's default parser is not correctly
/// rounded, so a float printed and parsed again may move by one unit in the last place.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            x == y || (x - y).abs() <= f64::EPSILON * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}
