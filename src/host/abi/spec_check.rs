//! The ABI is written down three times: `guest-sdk/_pq/pq_abi.h` (the guest's end),
//! `host/abi.rs` (the host's) and `guest-sdk/ABI.md` (the prose). This test holds them
//! together: every operation, error code, driver status and the version, by name and value.

use std::collections::BTreeMap;

use super::{ABI_VERSION, AbiError, OPS, driver_status};

const HEADER: &str = include_str!("../../../guest-sdk/_pq/pq_abi.h");
const PROSE: &str = include_str!("../../../guest-sdk/ABI.md");

/// `#define PREFIX<NAME> <value>` lines of the header, by name.
fn defines(prefix: &str) -> BTreeMap<String, i32> {
    HEADER
        .lines()
        .filter_map(|line| {
            let mut words = line.strip_prefix("#define ")?.split_whitespace();
            let name = words.next()?.strip_prefix(prefix)?.to_string();
            Some((name, words.next()?.parse().ok()?))
        })
        .collect()
}

/// Rows of ABI.md's tables whose first cell is a number and second a `NAME` in backquotes.
fn table_rows(strip: &str) -> BTreeMap<String, i32> {
    PROSE
        .lines()
        .filter_map(|line| {
            let mut cells = line.strip_prefix('|')?.split('|').map(str::trim);
            let value = cells.next()?.parse().ok()?;
            let name = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
            Some((name.strip_prefix(strip).unwrap_or(name).to_string(), value))
        })
        .collect()
}

fn owned(pairs: &[(&str, i32)]) -> BTreeMap<String, i32> {
    pairs.iter().map(|(n, v)| (n.to_string(), *v)).collect()
}

#[test]
fn header_host_and_prose_agree() {
    assert_eq!(
        defines("PQ_ABI_"),
        BTreeMap::from([("VERSION".into(), ABI_VERSION)])
    );
    assert_eq!(
        defines("PQ_OP_"),
        owned(OPS),
        "operations: pq_abi.h vs abi.rs"
    );
    let mut codes = owned(AbiError::CODES);
    let header_codes = defines("PQ_E_");
    assert_eq!(header_codes, codes, "error codes: pq_abi.h vs abi.rs");
    let drivers = [
        ("OK", driver_status::OK),
        ("REPORTED", driver_status::REPORTED),
        ("BROKEN", driver_status::BROKEN),
    ];
    assert_eq!(defines("PQ_DRIVER_"), owned(&drivers), "driver statuses");
    // ABI.md: the operations table names ops without prefix, the codes table with `PQ_E_`.
    let prose = table_rows("PQ_E_");
    for (name, value) in OPS {
        assert_eq!(prose.get(*name), Some(value), "ABI.md's row for op {name}");
    }
    codes.insert("PQ_OK".into(), 0);
    for (name, value) in &codes {
        assert_eq!(prose.get(name), Some(value), "ABI.md's row for PQ_E_{name}");
    }
    let documented = prose.len();
    assert_eq!(
        documented,
        OPS.len() + codes.len(),
        "ABI.md lists something the code does not: {prose:?}"
    );
    assert!(
        PROSE.contains("PQ_DRIVER_OK") && PROSE.contains("PQ_DRIVER_REPORTED"),
        "ABI.md describes the driver's statuses"
    );
}
