//! The script capability: the guest pulls the handler source it should run.

use super::AbiError;

/// `PQ_OP_SCRIPT_SOURCE`: the script's UTF-8 source.
pub fn source(script: Option<&str>) -> Result<Vec<u8>, AbiError> {
    script
        .map(|s| s.as_bytes().to_vec())
        .ok_or_else(|| AbiError::new(AbiError::STATE, "no script is attached to this sandbox"))
}
