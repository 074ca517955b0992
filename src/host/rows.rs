//! Fetch results kept on the host for one call (`fetch(...)` answered with a handle): their
//! JSON as the database layer shaped it, handed to the guest only if Python touches the rows
//! (`PQ_OP_DB_ROWS`), and their response JSON, spliced into the body when the handler returns
//! them untouched (`PQ_OP_RESPONSE_BODY_ROWS`).

use super::AbiError;
use crate::db::render::{RenderOptions, render};

/// Bytes of results one call may keep, raw and rendered together; past it, rows go to the
/// guest as before.
const MAX_KEPT_BYTES: usize = 64 << 20;

/// One call's kept results.
#[derive(Debug, Default)]
pub struct KeptRows {
    results: Vec<Kept>,
    bytes: usize,
}

#[derive(Debug)]
struct Kept {
    raw: Vec<u8>,
    rendered: Vec<u8>,
}

impl KeptRows {
    /// Keeps `raw` with its rendering, if the renderer takes it and the budget allows;
    /// answers the guest's `{"handle", "count"}`.
    pub fn keep(&mut self, raw: Vec<u8>, options: &RenderOptions) -> Result<Vec<u8>, Vec<u8>> {
        let Some((rendered, count)) = render(&raw, options) else {
            return Err(raw);
        };
        let size = raw.len() + rendered.len();
        if self.bytes + size > MAX_KEPT_BYTES {
            return Err(raw);
        }
        self.bytes += size;
        self.results.push(Kept { raw, rendered });
        let handle = self.results.len() - 1;
        Ok(format!("{{\"handle\":{handle},\"count\":{count}}}").into_bytes())
    }

    /// `PQ_OP_DB_ROWS`: the raw result behind a handle (a u32, little-endian).
    pub fn raw(&self, arg: &[u8]) -> Result<Vec<u8>, AbiError> {
        Ok(self.get(arg)?.raw.clone())
    }

    fn get(&self, arg: &[u8]) -> Result<&Kept, AbiError> {
        let handle = <[u8; 4]>::try_from(arg)
            .map(u32::from_le_bytes)
            .map_err(|_| AbiError::new(AbiError::INVALID, "a rows handle is 4 bytes"))?;
        self.results.get(handle as usize).ok_or_else(|| {
            AbiError::new(AbiError::INVALID, format!("no rows with handle {handle}"))
        })
    }

    /// `PQ_OP_RESPONSE_BODY_ROWS`: a body of parts, each `[0][u32 LE n][n bytes]` (literal)
    /// or `[1][u32 LE handle]` (a kept result's rendering), assembled up to `limit` bytes.
    pub fn assemble(&self, arg: &[u8], limit: usize) -> Result<Vec<u8>, AbiError> {
        let malformed = || AbiError::new(AbiError::INVALID, "malformed body parts");
        let too_large = || {
            AbiError::new(
                AbiError::TOO_LARGE,
                format!("response body over the {limit}-byte limit"),
            )
        };
        let mut body = Vec::new();
        let mut rest = arg;
        while let Some((&tag, after)) = rest.split_first() {
            let (number, after) = after.split_first_chunk::<4>().ok_or_else(malformed)?;
            let number = u32::from_le_bytes(*number) as usize;
            let part: &[u8] = match tag {
                0 => {
                    let literal = after.get(..number).ok_or_else(malformed)?;
                    rest = &after[number..];
                    literal
                }
                1 => {
                    rest = after;
                    &self.get(&(number as u32).to_le_bytes())?.rendered
                }
                _ => return Err(malformed()),
            };
            if body.len() + part.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(part);
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> RenderOptions {
        RenderOptions::sdk_defaults()
    }

    #[test]
    fn parts_assemble_and_bad_parts_are_refused() {
        let mut kept = KeptRows::default();
        let raw = br#"{"columns":[{"name":"a","type":"int4"}],"rows":[{"a":1},{"a":2}]}"#.to_vec();
        let answer = kept.keep(raw.clone(), &options()).unwrap();
        assert_eq!(answer, br#"{"handle":0,"count":2}"#);
        assert_eq!(kept.raw(&0u32.to_le_bytes()).unwrap(), raw);
        let mut parts = vec![0u8];
        parts.extend_from_slice(&8u32.to_le_bytes());
        parts.extend_from_slice(br#"{"data":"#);
        parts.push(1);
        parts.extend_from_slice(&0u32.to_le_bytes());
        parts.push(0);
        parts.extend_from_slice(&1u32.to_le_bytes());
        parts.push(b'}');
        assert_eq!(
            kept.assemble(&parts, 1000).unwrap(),
            br#"{"data":[{"a":1},{"a":2}]}"#
        );
        assert_eq!(
            kept.assemble(&parts, 10).unwrap_err().code,
            AbiError::TOO_LARGE
        );
        for bad in [
            vec![2u8, 0, 0, 0, 0],
            vec![0, 5, 0, 0, 0, b'x'],
            vec![1, 9, 0, 0, 0],
            vec![0, 1],
        ] {
            assert!(kept.assemble(&bad, 1000).is_err(), "{bad:?}");
        }
        assert!(kept.raw(&[1, 2]).is_err());
    }
}
