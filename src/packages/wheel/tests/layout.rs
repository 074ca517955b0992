//! Where files are installed, and what may be installed at all.

use super::*;

#[test]
fn data_outside_site_packages_is_refused() {
    for (path, reason) in [
        ("demo_pkg-1.0.data/scripts/demo", "console scripts"),
        ("demo_pkg-1.0.data/headers/demo.h", "headers"),
        ("demo_pkg-1.0.data/data/share/x", "data files"),
        ("demo_pkg-1.0.data/other/x", "purelib"),
        ("demo_pkg-1.0.data/x.py", "purelib"),
    ] {
        match check(&with(&[(path, b"#!/bin/sh\n")]), &Knobs::default()) {
            Err(e @ WheelError::NotInstallable { .. }) => {
                assert!(e.to_string().contains(reason), "{e}")
            }
            other => panic!("{path}: {other:?}"),
        }
    }
}

#[test]
fn purelib_and_platlib_are_installed_at_the_root() {
    let files = with(&[
        ("demo_pkg-1.0.data/purelib/pkg/a.py", b"a = 1\n"),
        ("demo_pkg-1.0.data/platlib/other.py", b"b = 2\n"),
    ]);
    let wheel = check(&files, &Knobs::default()).unwrap();
    let a = wheel.files.iter().find(|f| f.path == "pkg/a.py").unwrap();
    assert_eq!(a.contents, b"a = 1\n");
    assert!(wheel.files.iter().any(|f| f.path == "other.py"));
    assert!(!wheel.files.iter().any(|f| f.path.contains(".data")));
    assert_eq!(wheel.top_level, ["other", "pkg"]);
    // The same top-level rules apply after the prefix is gone.
    let files = with(&[("demo_pkg-1.0.data/purelib/foo-bar/a.py", b"")]);
    assert!(matches!(
        check(&files, &Knobs::default()),
        Err(WheelError::NotInstallable { .. })
    ));
}

#[test]
fn signatures_are_not_installed() {
    let files = with(&[
        ("demo_pkg/__init__.py", b""),
        ("demo_pkg-1.0.dist-info/RECORD.jws", b"{}"),
    ]);
    let knobs = Knobs {
        unlisted: vec!["demo_pkg-1.0.dist-info/RECORD.jws"],
        ..Knobs::default()
    };
    let wheel = check(&files, &knobs).unwrap();
    assert!(!wheel.files.iter().any(|f| f.path.ends_with("RECORD.jws")));
}

#[test]
fn the_dist_info_must_match_the_filename() {
    for dist in [
        "other-1.0.dist-info",
        "demo_pkg-2.0.dist-info",
        "demo_pkg.dist-info",
    ] {
        let files: Files = good_files()
            .into_iter()
            .map(|(p, c)| (p.replace(DIST, dist), c))
            .collect();
        match check(&files, &Knobs::default()) {
            Err(WheelError::Metadata { path, .. }) => assert_eq!(path, dist),
            other => panic!("{dist}: {other:?}"),
        }
    }
    // Name normalisation: "Demo.Pkg" is the same project as "demo_pkg".
    let files: Files = good_files()
        .into_iter()
        .map(|(p, c)| (p.replace(DIST, "Demo.Pkg-1.0.dist-info"), c))
        .collect();
    check(&files, &Knobs::default()).unwrap();
    // A second .dist-info is one too many.
    let mut files = good_files();
    files.push((
        "other-1.0.dist-info/METADATA".into(),
        b"Name: other\n".to_vec(),
    ));
    let err = check(&files, &Knobs::default()).unwrap_err();
    assert!(err.to_string().contains("exactly one"), "{err}");
}

#[test]
fn only_modules_and_packages_are_installed_at_the_top() {
    for (path, reason) in [
        ("foo-bar/x.py", "\"foo-bar\""),
        ("1pkg/x.py", "\"1pkg\""),
        ("README.txt", "top level"),
        ("foo-bar.py", "top level"),
        ("setup.cfg", "top level"),
        ("demo.pth", ".pth"),
        ("demo.PTH", ".pth"),
        ("sitecustomize.py", "start-up"),
        ("usercustomize/__init__.py", "start-up"),
    ] {
        match check(&with(&[(path, b"import os\n")]), &Knobs::default()) {
            Err(e @ WheelError::NotInstallable { .. }) => {
                assert!(e.to_string().contains(reason), "{e}")
            }
            other => panic!("{path}: {other:?}"),
        }
    }
}
