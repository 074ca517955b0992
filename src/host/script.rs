//! The script capability: the guest pulls the handler source it should run, and the code
//! object compiled from it by an earlier instance (guest-sdk/ABI.md, ops 3, 7 and 8).

use std::sync::Arc;

use super::AbiError;

/// Largest code object a guest may offer, in bytes of `marshal` output.
pub const MAX_CODE_BYTES: usize = 1 << 20;

/// `PQ_OP_SCRIPT_SOURCE`: the script's UTF-8 source.
pub fn source(script: Option<&str>) -> Result<Vec<u8>, AbiError> {
    script
        .map(|s| s.as_bytes().to_vec())
        .ok_or_else(|| AbiError::new(AbiError::STATE, "no script is attached to this sandbox"))
}

/// The compiled script as it travels between instances of one endpoint version.
#[derive(Default)]
pub struct ScriptCode {
    /// Offered by an earlier instance, for this one to load instead of compiling.
    pub cached: Option<Arc<[u8]>>,
    /// What this instance offered, kept only if its script then loaded.
    pub offered: Option<Vec<u8>>,
    /// Whether an offer is still taken: only the driver's, before the script's own code runs.
    pub accepting: bool,
}

/// `PQ_OP_SCRIPT_CODE`: the cached code object, or nothing.
pub fn cached_code(code: &ScriptCode) -> Vec<u8> {
    code.cached
        .as_deref()
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

/// `PQ_OP_SCRIPT_CODE_OFFER`: keeps the first offer; later ones (the script's own module
/// code calling the import) are ignored.
pub fn offer_code(code: &mut ScriptCode, arg: Vec<u8>) -> Result<(), AbiError> {
    if arg.len() > MAX_CODE_BYTES {
        return Err(AbiError::new(
            AbiError::TOO_LARGE,
            format!("a code object may take at most {MAX_CODE_BYTES} bytes"),
        ));
    }
    if code.accepting && code.cached.is_none() && !arg.is_empty() {
        code.offered = Some(arg);
    }
    code.accepting = false;
    Ok(())
}
