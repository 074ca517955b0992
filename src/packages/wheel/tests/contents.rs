//! Entries that are native code, escape the install directory or are not plain files.

use super::*;

#[test]
fn native_libraries_are_refused_by_name() {
    for path in [
        "demo_pkg/_speedups.so",
        "demo_pkg/_speedups.cpython-313-x86_64-linux-gnu.so",
        "demo_pkg/LIB.PYD",
        "demo_pkg/libfoo.so.1.2",
        "demo_pkg/lib.dylib",
        "demo_pkg/x.dll",
        "demo_pkg/x.a",
        "demo_pkg/x.o",
        "demo_pkg-1.0.dist-info/hidden.so",
    ] {
        let err = check(&with(&[(path, b"not really")]), &Knobs::default()).unwrap_err();
        assert!(
            matches!(err, WheelError::NativeCode { .. }),
            "{path}: {err}"
        );
        assert!(err.to_string().contains("runs no native code"));
    }
}

#[test]
fn native_code_is_refused_by_contents() {
    let mut pe = b"MZ".to_vec();
    pe.resize(0x40, 0);
    pe[0x3c] = 0x40;
    pe.extend_from_slice(b"PE\0\0");
    for (path, contents) in [
        ("demo_pkg/helper", &b"\x7fELF\x02\x01\x01\0\0\0"[..]),
        ("demo_pkg/helper.py", b"\x7fELF\x02\x01\x01\0"),
        ("demo_pkg/lib", b"\xcf\xfa\xed\xfe\x07\0\0\x01"),
        ("demo_pkg/mod.bin", b"\0asm\x01\0\0\0"),
        ("demo_pkg/tool", b"MZ\x90\0"),
        ("demo_pkg/tool.txt", &pe),
    ] {
        let err = check(&with(&[(path, contents)]), &Knobs::default()).unwrap_err();
        assert!(
            matches!(err, WheelError::NativeCode { .. }),
            "{path}: {err}"
        );
    }
    // Text that merely starts with "MZ" is text.
    check(
        &with(&[("demo_pkg/names.txt", b"MZ Smith\n")]),
        &Knobs::default(),
    )
    .unwrap();
}

#[test]
fn paths_that_escape_are_refused() {
    for (path, reason) in [
        ("../evil.py", "'..'"),
        ("demo_pkg/../../evil.py", "'..'"),
        ("/etc/x", "absolute"),
        ("C:/evil.py", "':'"),
        ("demo_pkg\\evil.py", "backslash"),
        ("demo_pkg//evil.py", "empty path component"),
        ("./demo_pkg/evil.py", "'.'"),
        ("demo_pkg/ev\nil.py", "control"),
    ] {
        assert_unsafe(check(&with(&[(path, b"x")]), &Knobs::default()), reason);
    }
    let long = format!("demo_pkg/{}.py", "a/".repeat(260));
    assert_unsafe(
        check(&with(&[(long.as_str(), b"x")]), &Knobs::default()),
        "longer than 512",
    );
}

#[test]
fn symlinks_are_refused() {
    let knobs = Knobs {
        symlinks: vec![("demo_pkg/link.py", "/etc/passwd")],
        ..Knobs::default()
    };
    assert_unsafe(check(&good_files(), &knobs), "symbolic link");
}

#[test]
fn duplicate_paths_are_refused() {
    // The writer refuses a name twice: rename one entry in place, headers and all.
    let files = with(&[("demo_pkg/a.py", b"a = 1\n"), ("demo_pkg/b.py", b"b = 2\n")]);
    let mut bytes = build(&files, &Knobs::default());
    patch(&mut bytes, b"demo_pkg/b.py", b"demo_pkg/a.py");
    let err = inspect(FILENAME, &bytes, &WheelLimits::default()).unwrap_err();
    assert!(matches!(err, WheelError::Archive(_)), "{err}");
    assert!(err.to_string().contains("same name"), "{err}");

    let files = with(&[("demo_pkg/a.py", b"a = 1\n"), ("DEMO_PKG/A.py", b"b = 2\n")]);
    assert_unsafe(check(&files, &Knobs::default()), "case-insensitively");
}

#[test]
fn paths_that_collide_once_installed_are_refused() {
    let data = "demo_pkg-1.0.data/purelib/demo_pkg/__init__.py";
    let files = with(&[("demo_pkg/__init__.py", b""), (data, b"")]);
    assert_unsafe(check(&files, &Knobs::default()), "two files");
    let file = "demo_pkg-1.0.data/purelib/demo_pkg/sub";
    let files = with(&[("demo_pkg/sub/x.py", b""), (file, b"")]);
    assert_unsafe(check(&files, &Knobs::default()), "inside it");
}

#[test]
fn special_file_types_are_refused() {
    // External attributes: offset 38 in the central header, the Unix mode in the high half.
    for (mode, reason) in [
        (0o010644u32, "only regular files"),
        (0o020644, "only regular files"),
        (0o040755, "trailing '/'"),
        (0o120777, "symbolic link"),
    ] {
        let mut bytes = build(&good_files(), &Knobs::default());
        let archive = ZipArchive::new(Cursor::new(bytes.clone())).unwrap();
        let index = archive.index_for_name("helper.py").unwrap();
        let at = archive.by_index_data(index).unwrap().central_header_start() as usize + 38;
        bytes[at..at + 4].copy_from_slice(&(mode << 16).to_le_bytes());
        assert_unsafe(inspect(FILENAME, &bytes, &WheelLimits::default()), reason);
    }
}
