//! The wire between host and guest: the `pq.host_call` and `pq.take_result` imports.
//!
//! Apart from the counted WASI file calls (`files.rs`), this is the only file that reads or
//! writes guest memory, and it does so through wasmtime's
//! bounds-checked `Memory::read`/`Memory::write`: every guest pointer and length is checked
//! against the memory's current size before a byte moves. guest-sdk/ABI.md describes the same
//! contract in prose; the two change together.

use wasmtime::{Caller, Extern, Linker, Memory};

use super::{HostState, db, egress, error_report, request, response, script, secret, state};

#[cfg(test)]
mod spec_check;

/// The ABI version this host speaks (`PQ_ABI_VERSION` in guest-sdk/_pq/pq_abi.h).
pub const ABI_VERSION: i32 = 6;

/// Largest argument a guest may pass to one host call: above the largest response body we
/// accept, and small enough that a copy of it never threatens the host.
pub const MAX_ARG_BYTES: u32 = 64 << 20;

/// Host-call operations (`PQ_OP_*`).
pub mod op {
    /// JSON head of the current request.
    pub const REQUEST_HEAD: i32 = 1;
    /// Raw body of the current request.
    pub const REQUEST_BODY: i32 = 2;
    /// UTF-8 source of the handler script.
    pub const SCRIPT_SOURCE: i32 = 3;
    /// JSON `{"status", "headers"}` of the response.
    pub const RESPONSE_HEAD: i32 = 4;
    /// Raw response body.
    pub const RESPONSE_BODY: i32 = 5;
    /// JSON report of why the guest failed.
    pub const ERROR_REPORT: i32 = 6;
    /// The script's cached code object, or nothing.
    pub const SCRIPT_CODE: i32 = 7;
    /// The guest offers the code object it compiled.
    pub const SCRIPT_CODE_OFFER: i32 = 8;
    /// The response body in parts, kept rows spliced in.
    pub const RESPONSE_BODY_ROWS: i32 = 9;
    /// JSON database call.
    pub const DB: i32 = 16;
    /// A tenant secret's value by name.
    pub const SECRET: i32 = 17;
    /// The endpoint's JSON state.
    pub const STATE_GET: i32 = 18;
    /// Replaces the endpoint's JSON state.
    pub const STATE_SET: i32 = 19;
    /// One outbound HTTP request.
    pub const HTTP: i32 = 20;
    /// The raw result behind a kept-rows handle.
    pub const DB_ROWS: i32 = 21;
}

/// Every operation by its `PQ_OP_*` name (without the prefix), as the header and ABI.md list
/// them; a test holds the three against each other.
pub const OPS: &[(&str, i32)] = &[
    ("REQUEST_HEAD", op::REQUEST_HEAD),
    ("REQUEST_BODY", op::REQUEST_BODY),
    ("SCRIPT_SOURCE", op::SCRIPT_SOURCE),
    ("RESPONSE_HEAD", op::RESPONSE_HEAD),
    ("RESPONSE_BODY", op::RESPONSE_BODY),
    ("ERROR_REPORT", op::ERROR_REPORT),
    ("SCRIPT_CODE", op::SCRIPT_CODE),
    ("SCRIPT_CODE_OFFER", op::SCRIPT_CODE_OFFER),
    ("RESPONSE_BODY_ROWS", op::RESPONSE_BODY_ROWS),
    ("DB", op::DB),
    ("SECRET", op::SECRET),
    ("STATE_GET", op::STATE_GET),
    ("STATE_SET", op::STATE_SET),
    ("HTTP", op::HTTP),
    ("DB_ROWS", op::DB_ROWS),
];

/// What the driver's exports (`pq_compile`, `pq_load`, `pq_handle`) return (`PQ_DRIVER_*`).
pub mod driver_status {
    /// Done.
    pub const OK: i32 = 0;
    /// The guest failed and said why through `PQ_OP_ERROR_REPORT`.
    pub const REPORTED: i32 = 1;
    /// The driver itself failed (e.g. a handler replaced its internals).
    pub const BROKEN: i32 = 2;
}

/// Who caused a failed host call. Guest faults become Python exceptions; host faults also
/// become a 5xx for the client and a log line for the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The guest passed something invalid or asked for something it may not have.
    Guest,
    /// The host failed to do something valid.
    Host,
}

/// A failed host call: the status code the guest sees and a message for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct AbiError {
    /// One of the negative `PQ_E_*` codes.
    pub code: i32,
    /// Text handed to the guest; never holds host secrets or paths.
    pub message: String,
}

impl AbiError {
    /// A pointer or length outside guest memory.
    pub const FAULT: i32 = -1;
    /// An argument above its documented limit.
    pub const TOO_LARGE: i32 = -2;
    /// An unknown operation.
    pub const NO_OP: i32 = -3;
    /// A malformed argument.
    pub const INVALID: i32 = -4;
    /// A capability this sandbox does not have.
    pub const UNAVAILABLE: i32 = -5;
    /// `take_result` without a pending result of that length.
    pub const NO_RESULT: i32 = -6;
    /// The host failed.
    pub const HOST: i32 = -7;
    /// Not allowed for this guest.
    pub const DENIED: i32 = -8;
    /// A call out of order.
    pub const STATE: i32 = -9;
    /// PostgreSQL refused a statement; the message is JSON `{"sqlstate", "message"}`.
    pub const SQL: i32 = -10;
    /// The tenant's database cannot be reached.
    pub const DB_UNAVAILABLE: i32 = -11;
    /// No such thing (e.g. a secret name the tenant never set).
    pub const NOT_FOUND: i32 = -12;
    /// An outbound request failed on the network; the message is JSON `{"reason", "message"}`.
    pub const NETWORK: i32 = -13;

    /// Every code by its `PQ_E_*` name (without the prefix).
    pub const CODES: &[(&str, i32)] = &[
        ("FAULT", Self::FAULT),
        ("TOO_LARGE", Self::TOO_LARGE),
        ("NO_OP", Self::NO_OP),
        ("INVALID", Self::INVALID),
        ("UNAVAILABLE", Self::UNAVAILABLE),
        ("NO_RESULT", Self::NO_RESULT),
        ("HOST", Self::HOST),
        ("DENIED", Self::DENIED),
        ("STATE", Self::STATE),
        ("SQL", Self::SQL),
        ("DB_UNAVAILABLE", Self::DB_UNAVAILABLE),
        ("NOT_FOUND", Self::NOT_FOUND),
        ("NETWORK", Self::NETWORK),
    ];

    /// An error with the given code and message.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        AbiError {
            code,
            message: message.into(),
        }
    }

    /// Whether the guest or the host is to blame.
    pub fn fault(&self) -> Fault {
        if self.code == Self::HOST {
            Fault::Host
        } else {
            Fault::Guest
        }
    }
}

/// Adds the `pq` imports to `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap_async(
        "pq",
        "host_call",
        |mut caller: Caller<'_, HostState>,
         (op, ptr, len, result_len_ptr): (i32, i32, i32, i32)| {
            Box::new(async move { host_call(&mut caller, op, ptr, len, result_len_ptr).await })
        },
    )?;
    linker.func_wrap(
        "pq",
        "take_result",
        |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> i32 {
            take_result(&mut caller, ptr, len)
        },
    )?;
    Ok(())
}

async fn host_call(
    caller: &mut Caller<'_, HostState>,
    op: i32,
    ptr: i32,
    len: i32,
    result_len_ptr: i32,
) -> i32 {
    caller.data_mut().pending_result = None;
    let Some(memory) = guest_memory(caller) else {
        return AbiError::FAULT;
    };
    let outcome = match read_guest(caller, memory, ptr, len) {
        Ok(arg) => dispatch(caller.data_mut(), op, arg).await,
        Err(err) => Err(err),
    };
    let (code, result) = match outcome {
        Ok(result) => (0, result),
        Err(err) => {
            if err.fault() == Fault::Host {
                tracing::error!(op, code = err.code, "host call failed: {}", err.message);
            }
            (err.code, err.message.into_bytes())
        }
    };
    let result_len = u32::try_from(result.len())
        .unwrap_or(u32::MAX)
        .to_le_bytes();
    if write_guest(caller, memory, result_len_ptr, &result_len).is_err() {
        return AbiError::FAULT;
    }
    caller.data_mut().pending_result = Some(result);
    code
}

fn take_result(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> i32 {
    let Some(memory) = guest_memory(caller) else {
        return AbiError::FAULT;
    };
    let pending_len = caller.data().pending_result.as_ref().map(Vec::len);
    if pending_len.is_none() || pending_len != usize::try_from(len as u32).ok() {
        return AbiError::NO_RESULT;
    }
    let result = caller.data_mut().pending_result.take().unwrap_or_default();
    match write_guest(caller, memory, ptr, &result) {
        Ok(()) => 0,
        Err(err) => {
            // Keep the result: the guest may retry with a valid buffer.
            caller.data_mut().pending_result = Some(result);
            err
        }
    }
}

async fn dispatch(host: &mut HostState, op: i32, arg: Vec<u8>) -> Result<Vec<u8>, AbiError> {
    match op {
        op::REQUEST_HEAD => request::head(host.request.as_deref()),
        op::REQUEST_BODY => request::body(host.request.as_deref()),
        op::SCRIPT_SOURCE => script::source(host.script.as_deref()),
        op::SCRIPT_CODE => Ok(script::cached_code(&host.code)),
        op::SCRIPT_CODE_OFFER => script::offer_code(&mut host.code, arg).map(|()| Vec::new()),
        op::RESPONSE_HEAD => response::set_head(&mut host.response, &arg).map(|()| Vec::new()),
        op::RESPONSE_BODY => response::set_body(&mut host.response, arg).map(|()| Vec::new()),
        op::RESPONSE_BODY_ROWS => {
            let body = host.kept_rows.assemble(&arg, host.response.body_limit())?;
            response::set_body(&mut host.response, body).map(|()| Vec::new())
        }
        op::DB_ROWS => host.kept_rows.raw(&arg),
        op::ERROR_REPORT => {
            host.error_report = Some(error_report::decode(&arg)?);
            Ok(Vec::new())
        }
        op::DB => {
            // Without a deadline (a call outside a request) a database call gets 30 s at most.
            let deadline = host
                .deadline
                .unwrap_or_else(|| std::time::Instant::now() + std::time::Duration::from_secs(30));
            waiting_on_io(host);
            let capability = host.capabilities.db.clone();
            db::call(capability.as_deref(), deadline, &arg, &mut host.kept_rows).await
        }
        op::SECRET => secret::get(host.capabilities.secrets.as_deref(), &arg).await,
        op::STATE_GET => {
            waiting_on_io(host);
            state::get(host.capabilities.state.as_deref()).await
        }
        op::STATE_SET => {
            waiting_on_io(host);
            state::set(host.capabilities.state.as_deref(), &arg).await
        }
        op::HTTP => {
            // Outside a request (no deadline) an outbound call gets 30 s at most.
            let deadline = host
                .deadline
                .unwrap_or_else(|| std::time::Instant::now() + std::time::Duration::from_secs(30));
            waiting_on_io(host);
            egress::call(host.capabilities.egress.as_deref(), deadline, &arg).await
        }
        _ => Err(AbiError::new(
            AbiError::NO_OP,
            format!("unknown host operation {op}"),
        )),
    }
}

fn waiting_on_io(host: &HostState) {
    if let Some(notify) = &host.on_io_wait {
        notify();
    }
}

/// Decodes a guest's JSON argument, which must be an object (serde would also take an array
/// for a struct; the ABI does not).
pub fn decode_object<T: serde::de::DeserializeOwned>(
    arg: &[u8],
    what: &str,
) -> Result<T, AbiError> {
    let malformed = |e: String| AbiError::new(AbiError::INVALID, format!("malformed {what}: {e}"));
    match serde_json::from_slice::<serde_json::Value>(arg) {
        Ok(value @ serde_json::Value::Object(_)) => {
            serde_json::from_value(value).map_err(|e| malformed(e.to_string()))
        }
        Ok(_) => Err(malformed("expected a JSON object".into())),
        Err(e) => Err(malformed(e.to_string())),
    }
}

fn guest_memory(caller: &mut Caller<'_, HostState>) -> Option<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Some(memory),
        _ => None,
    }
}

/// Validates a guest (pointer, length) pair against memory's current size.
fn guest_range(
    caller: &Caller<'_, HostState>,
    memory: Memory,
    ptr: i32,
    len: i32,
) -> Result<(usize, usize), i32> {
    // The guest is wasm32: pointers and lengths are unsigned 32-bit values.
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    match start.checked_add(len) {
        Some(end) if end <= memory.data_size(caller) => Ok((start, len)),
        _ => Err(AbiError::FAULT),
    }
}

fn read_guest(
    caller: &Caller<'_, HostState>,
    memory: Memory,
    ptr: i32,
    len: i32,
) -> Result<Vec<u8>, AbiError> {
    if len as u32 > MAX_ARG_BYTES {
        return Err(AbiError::new(
            AbiError::TOO_LARGE,
            format!(
                "argument of {} bytes is over the {MAX_ARG_BYTES}-byte limit",
                len as u32
            ),
        ));
    }
    let (start, len) = guest_range(caller, memory, ptr, len)
        .map_err(|code| AbiError::new(code, "argument lies outside guest memory"))?;
    let mut buf = vec![0; len];
    memory
        .read(caller, start, &mut buf)
        .map_err(|_| AbiError::new(AbiError::FAULT, "argument lies outside guest memory"))?;
    Ok(buf)
}

fn write_guest(
    caller: &mut Caller<'_, HostState>,
    memory: Memory,
    ptr: i32,
    bytes: &[u8],
) -> Result<(), i32> {
    let len = i32::try_from(bytes.len()).map_err(|_| AbiError::FAULT)?;
    let (start, _) = guest_range(caller, memory, ptr, len)?;
    memory
        .write(caller, start, bytes)
        .map_err(|_| AbiError::FAULT)
}
