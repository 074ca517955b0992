//! Wheels built in memory, good and broken in every way we know of, and what [`inspect`] makes
//! of them.

use super::*;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::io::Write;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

mod contents;
mod filename;
mod layout;
mod limits;
mod metadata;
mod record;

const FILENAME: &str = "demo_pkg-1.0-py3-none-any.whl";
const DIST: &str = "demo_pkg-1.0.dist-info";
const WHEEL: &str =
    "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n";
const METADATA: &str = "Metadata-Version: 2.1\r\nName: demo-pkg\r\nVersion: 1.0\r\n\
    Requires-Dist: requests (>=2)\r\nRequires-Dist: attrs;\r\n  python_version >= \"3.8\"\r\n\
    \r\nA long description.\r\nRequires-Dist: not-a-header\r\n";

type Files = Vec<(String, Vec<u8>)>;

/// Ways to break the RECORD that [`build`] writes.
#[derive(Default)]
struct Knobs {
    /// Write no RECORD at all.
    no_record: bool,
    /// Paths left out of RECORD.
    unlisted: Vec<&'static str>,
    /// Paths listed with the hash of other bytes.
    wrong_hash: Vec<&'static str>,
    /// Rows appended as they are.
    extra_rows: Vec<String>,
    /// Hash algorithm written in place of sha256 (the digest stays sha256's).
    algorithm: Option<&'static str>,
    /// Symbolic links added (name, target), not in RECORD.
    symlinks: Vec<(&'static str, &'static str)>,
}

/// The dist-info files of a good wheel, and `extra`.
fn with(extra: &[(&str, &[u8])]) -> Files {
    let mut files: Files = vec![
        (format!("{DIST}/WHEEL"), WHEEL.into()),
        (format!("{DIST}/METADATA"), METADATA.into()),
    ];
    files.extend(extra.iter().map(|(p, c)| (p.to_string(), c.to_vec())));
    files
}

/// A good wheel's files: a package, a module and a stub.
fn good_files() -> Files {
    with(&[
        ("demo_pkg/__init__.py", b"from .util import x\n"),
        ("demo_pkg/util.py", b"x = 1\n"),
        ("demo_pkg/data/table.json", b"{}"),
        ("helper.py", b"def help(): pass\n"),
        ("typed.pyi", b"def f() -> int: ...\n"),
    ])
}

/// Zips `files` with a RECORD (broken as `knobs` say) in their .dist-info directory.
fn build(files: &Files, knobs: &Knobs) -> Vec<u8> {
    let dist = files
        .iter()
        .find_map(|(p, _)| {
            p.split_once(".dist-info/")
                .map(|(d, _)| format!("{d}.dist-info"))
        })
        .unwrap_or_else(|| DIST.to_string());
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    let mut record = String::new();
    for (path, contents) in files {
        zip.start_file(path.as_str(), options).unwrap();
        zip.write_all(contents).unwrap();
        if knobs.unlisted.contains(&path.as_str()) {
            continue;
        }
        let hashed: &[u8] = if knobs.wrong_hash.contains(&path.as_str()) {
            b"something else"
        } else {
            contents
        };
        let digest = URL_SAFE_NO_PAD.encode(Sha256::digest(hashed));
        let algorithm = knobs.algorithm.unwrap_or("sha256");
        record.push_str(&format!("{path},{algorithm}={digest},{}\n", contents.len()));
    }
    for (name, target) in &knobs.symlinks {
        zip.add_symlink(*name, *target, options).unwrap();
    }
    for row in &knobs.extra_rows {
        record.push_str(row);
        record.push('\n');
    }
    if !knobs.no_record {
        record.push_str(&format!("{dist}/RECORD,,\n"));
        zip.start_file(format!("{dist}/RECORD"), options).unwrap();
        zip.write_all(record.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn check(files: &Files, knobs: &Knobs) -> Result<Wheel, WheelError> {
    inspect(FILENAME, &build(files, knobs), &WheelLimits::default())
}

/// Replaces every occurrence of `from` with `to`, both the same length.
fn patch(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let mut at = 0;
    while let Some(i) = bytes[at..].windows(from.len()).position(|w| w == from) {
        bytes[at + i..at + i + to.len()].copy_from_slice(to);
        at += i + to.len();
    }
}

#[track_caller]
fn assert_unsafe(result: Result<Wheel, WheelError>, expected: &str) {
    match result {
        Err(e @ WheelError::UnsafePath { .. }) => {
            assert!(e.to_string().contains(expected), "{e}")
        }
        other => panic!("expected an unsafe path error, got {other:?}"),
    }
}

#[test]
fn a_good_wheel_is_read_whole() {
    let bytes = build(&good_files(), &Knobs::default());
    let wheel = inspect(FILENAME, &bytes, &WheelLimits::default()).unwrap();
    assert_eq!(wheel.filename, FILENAME);
    assert_eq!(wheel.name, "demo-pkg");
    assert_eq!(wheel.version, "1.0");
    assert_eq!(wheel.top_level, ["demo_pkg", "helper", "typed"]);
    assert_eq!(
        wheel.requires,
        ["requests (>=2)", "attrs; python_version >= \"3.8\""]
    );
    let paths: Vec<&str> = wheel.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "demo_pkg-1.0.dist-info/METADATA",
            "demo_pkg-1.0.dist-info/RECORD",
            "demo_pkg-1.0.dist-info/WHEEL",
            "demo_pkg/__init__.py",
            "demo_pkg/data/table.json",
            "demo_pkg/util.py",
            "helper.py",
            "typed.pyi",
        ]
    );
    let util = wheel.files.iter().find(|f| f.path == "demo_pkg/util.py");
    assert_eq!(util.unwrap().contents, b"x = 1\n");
    let total: usize = wheel.files.iter().map(|f| f.contents.len()).sum();
    assert_eq!(wheel.unpacked_bytes, total as u64);

    // What the installer does with a stored wheel: its own size is exactly enough.
    let exact = WheelLimits {
        max_unpacked_bytes: wheel.unpacked_bytes,
        ..WheelLimits::default()
    };
    inspect(FILENAME, &bytes, &exact).unwrap();
    let less = WheelLimits {
        max_unpacked_bytes: wheel.unpacked_bytes - 1,
        ..exact
    };
    assert!(matches!(
        inspect(FILENAME, &bytes, &less),
        Err(WheelError::Unpacked { .. })
    ));
}

#[test]
fn explicit_directory_entries_are_skipped() {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default();
    zip.add_directory("demo_pkg/", options).unwrap();
    zip.add_directory(format!("{DIST}/"), options).unwrap();
    let mut record = String::new();
    for (path, contents) in with(&[("demo_pkg/__init__.py", b"")]) {
        zip.start_file(path.as_str(), options).unwrap();
        zip.write_all(&contents).unwrap();
        let digest = URL_SAFE_NO_PAD.encode(Sha256::digest(&contents));
        record.push_str(&format!("{path},sha256={digest},{}\n", contents.len()));
    }
    zip.start_file(format!("{DIST}/RECORD"), options).unwrap();
    zip.write_all(record.as_bytes()).unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    let wheel = inspect(FILENAME, &bytes, &WheelLimits::default()).unwrap();
    assert_eq!(wheel.top_level, ["demo_pkg"]);
    assert_eq!(wheel.files.len(), 4);
}

#[test]
fn a_metadata_only_wheel_is_allowed() {
    let wheel = check(&with(&[]), &Knobs::default()).unwrap();
    assert!(wheel.top_level.is_empty());
    assert_eq!(wheel.requires.len(), 2);
}

#[test]
fn bytes_that_are_not_a_wheel_are_refused() {
    for bytes in [&b""[..], b"hello, world", b"PK\x03\x04garbage"] {
        let err = inspect(FILENAME, bytes, &WheelLimits::default()).unwrap_err();
        assert!(matches!(err, WheelError::Archive(_)), "{err}");
    }
    let mut prefixed = b"\x7fELF-looking prefix".to_vec();
    prefixed.extend(build(&good_files(), &Knobs::default()));
    let err = inspect(FILENAME, &prefixed, &WheelLimits::default()).unwrap_err();
    assert!(matches!(err, WheelError::Archive(_)), "{err}");
}

#[test]
fn garbage_never_panics() {
    // Every single-byte corruption of a good wheel is either accepted or refused.
    let bytes = build(&good_files(), &Knobs::default());
    for i in 0..bytes.len() {
        for value in [0x00, 0xff, bytes[i] ^ 0x01] {
            let mut broken = bytes.clone();
            broken[i] = value;
            let _ = inspect(FILENAME, &broken, &WheelLimits::default());
        }
        let _ = inspect(FILENAME, &bytes[..i], &WheelLimits::default());
    }
}
