//! Sizes, counts and compression ratios: zip bombs and lying headers.

use super::*;

#[test]
fn a_wheel_too_large_to_unpack_is_refused_before_decompressing() {
    // 100 MiB of zeros deflates to about 100 KiB: each header states the real size.
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (path, contents) in with(&[]) {
        zip.start_file(path.as_str(), options).unwrap();
        zip.write_all(&contents).unwrap();
    }
    zip.start_file("demo_pkg/zeros.py", options).unwrap();
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..100 {
        zip.write_all(&chunk).unwrap();
    }
    let bytes = zip.finish().unwrap().into_inner();
    assert!(bytes.len() < 1 << 20);
    let limits = WheelLimits {
        max_ratio: u64::MAX,
        ..WheelLimits::default()
    };
    let err = inspect(FILENAME, &bytes, &limits).unwrap_err();
    assert!(err.to_string().contains("67108864"), "{err}");
    let err = inspect(FILENAME, &bytes, &WheelLimits::default()).unwrap_err();
    assert!(matches!(err, WheelError::TooLarge(_)), "{err}");
}

#[test]
fn a_high_compression_ratio_is_refused() {
    let zeros = vec![0u8; 1 << 20];
    let err = check(&with(&[("demo_pkg/zeros.py", &zeros)]), &Knobs::default()).unwrap_err();
    assert!(matches!(err, WheelError::TooLarge(_)), "{err}");
    assert!(err.to_string().contains("zip bomb"), "{err}");
    assert!(err.to_string().contains("demo_pkg/zeros.py"), "{err}");
}

#[test]
fn a_header_that_understates_its_data_is_refused() {
    let files = with(&[("demo_pkg/big.py", &[b'#'; 10_000])]);
    let mut bytes = build(&files, &Knobs::default());
    let archive = ZipArchive::new(Cursor::new(bytes.clone())).unwrap();
    let index = archive.index_for_name("demo_pkg/big.py").unwrap();
    let entry = archive.by_index_data(index).unwrap();
    let (local, central) = (
        entry.header_start() as usize,
        entry.central_header_start() as usize,
    );
    // Uncompressed size: offset 22 in the local header, 24 in the central one.
    bytes[local + 22..local + 26].copy_from_slice(&100u32.to_le_bytes());
    bytes[central + 24..central + 28].copy_from_slice(&100u32.to_le_bytes());
    let err = inspect(FILENAME, &bytes, &WheelLimits::default()).unwrap_err();
    assert!(matches!(err, WheelError::Archive(_)), "{err}");
    assert!(err.to_string().contains("demo_pkg/big.py"), "{err}");
}

#[test]
fn an_empty_entry_claiming_data_is_refused() {
    let files = with(&[("demo_pkg/x.py", b"")]);
    let mut bytes = build(&files, &Knobs::default());
    let archive = ZipArchive::new(Cursor::new(bytes.clone())).unwrap();
    let index = archive.index_for_name("demo_pkg/x.py").unwrap();
    let entry = archive.by_index_data(index).unwrap();
    let (local, central) = (
        entry.header_start() as usize,
        entry.central_header_start() as usize,
    );
    // Compressed size 0 (offset 18 / 20), uncompressed 10 (offset 22 / 24): below the
    // ratio floor, so it is the decompression that finds nothing to expand.
    bytes[local + 18..local + 26].copy_from_slice(&[0, 0, 0, 0, 10, 0, 0, 0]);
    bytes[central + 20..central + 28].copy_from_slice(&[0, 0, 0, 0, 10, 0, 0, 0]);
    let err = inspect(FILENAME, &bytes, &WheelLimits::default()).unwrap_err();
    assert!(matches!(err, WheelError::Archive(_)), "{err}");
    // The same with a claim above the floor is a bomb by its ratio.
    let big = (1u32 << 20).to_le_bytes();
    bytes[local + 22..local + 26].copy_from_slice(&big);
    bytes[central + 24..central + 28].copy_from_slice(&big);
    let err = inspect(FILENAME, &bytes, &WheelLimits::default()).unwrap_err();
    assert!(err.to_string().contains("zip bomb"), "{err}");
}

#[test]
fn too_many_files_are_refused() {
    let names: Vec<String> = (0..10).map(|i| format!("demo_pkg/m{i}.py")).collect();
    let extra: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
    let bytes = build(&with(&extra), &Knobs::default());
    let limits = WheelLimits {
        max_files: 5,
        ..WheelLimits::default()
    };
    let err = inspect(FILENAME, &bytes, &limits).unwrap_err();
    assert!(matches!(err, WheelError::TooLarge(_)), "{err}");
    assert!(err.to_string().contains("13 entries"), "{err}");
    inspect(FILENAME, &bytes, &WheelLimits::default()).unwrap();
}
