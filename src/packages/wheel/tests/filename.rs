//! File names: tags, project names, versions.

use super::*;
use crate::packages::wheel::filename::normalize_name;

#[test]
fn py2_py3_and_build_tags_are_accepted() {
    let bytes = build(&good_files(), &Knobs::default());
    for filename in [
        "demo_pkg-1.0-py2.py3-none-any.whl",
        "demo_pkg-1.0-1-py3-none-any.whl",
        "Demo.Pkg-1.0-py3-none-any.whl",
    ] {
        let wheel = inspect(filename, &bytes, &WheelLimits::default()).unwrap();
        assert_eq!(wheel.name, "demo-pkg");
    }
}

#[test]
fn platform_wheels_are_refused_as_not_pure() {
    let bytes = build(&good_files(), &Knobs::default());
    for filename in [
        "demo_pkg-1.0-cp313-cp313-manylinux_2_17_x86_64.whl",
        "demo_pkg-1.0-py3-none-linux_x86_64.whl",
        "demo_pkg-1.0-py3-abi3-any.whl",
        "demo_pkg-1.0-py2-none-any.whl",
        "demo_pkg-1.0-cp313-none-any.whl",
        "demo_pkg-1.0-py3.cp313-none-any.whl",
    ] {
        let err = inspect(filename, &bytes, &WheelLimits::default()).unwrap_err();
        assert!(
            matches!(err, WheelError::NotPurePython { .. }),
            "{filename}: {err}"
        );
        let message = err.to_string();
        assert!(
            message.contains("only pure-Python wheels (py3-none-any)"),
            "{message}"
        );
        assert!(message.contains("runs no native code"), "{message}");
    }
}

#[test]
fn malformed_filenames_are_refused() {
    let bytes = build(&good_files(), &Knobs::default());
    let long = format!("{}-1.0-py3-none-any.whl", "a".repeat(200));
    for filename in [
        "demo_pkg-1.0-py3-none-any.zip",
        "demo_pkg-py3-none-any.whl",
        "../demo_pkg-1.0-py3-none-any.whl",
        "x/demo_pkg-1.0-py3-none-any.whl",
        "x\\demo_pkg-1.0-py3-none-any.whl",
        "demo_pkg-1.0-py3-none-any.whl\0",
        "demo_pkg-1.0-x-py3-none-any.whl",
        "demo pkg-1.0-py3-none-any.whl",
        "-1.0-py3-none-any.whl",
        long.as_str(),
    ] {
        let err = inspect(filename, &bytes, &WheelLimits::default()).unwrap_err();
        assert!(
            matches!(err, WheelError::Filename { .. }),
            "{filename:?}: {err}"
        );
    }
}

#[test]
fn names_are_normalised_like_pep_503() {
    assert_eq!(normalize_name("Demo_Pkg"), "demo-pkg");
    assert_eq!(normalize_name("a-_.b..c"), "a-b-c");
    assert_eq!(normalize_name("zope.interface"), "zope-interface");
}
