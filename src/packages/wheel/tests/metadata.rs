//! WHEEL and METADATA.

use super::*;
use crate::packages::wheel::metadata::{MAX_REQUIRES, parse_headers};

#[test]
fn missing_metadata_files_are_refused() {
    for missing in ["WHEEL", "METADATA", "RECORD"] {
        let path = format!("{DIST}/{missing}");
        let files: Files = good_files()
            .into_iter()
            .filter(|(p, _)| *p != path)
            .collect();
        let knobs = Knobs {
            no_record: missing == "RECORD",
            ..Knobs::default()
        };
        match check(&files, &knobs) {
            Err(WheelError::Metadata { path: p, reason }) => {
                assert_eq!(p, path);
                assert!(reason.contains("missing"));
            }
            other => panic!("{missing}: {other:?}"),
        }
    }
}

#[test]
fn wheel_file_must_say_pure_and_version_1() {
    for wheel in [
        "Wheel-Version: 1.0\nRoot-Is-Purelib: false\n",
        "Wheel-Version: 1.0\n",
        "Wheel-Version: 2.0\nRoot-Is-Purelib: true\n",
        "Root-Is-Purelib: true\n",
        "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nRoot-Is-Purelib: false\n",
        "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: cp313-cp313-manylinux_2_17_x86_64\n",
        "no header here\n",
    ] {
        let mut files = good_files();
        files[0].1 = wheel.into();
        let err = check(&files, &Knobs::default()).unwrap_err();
        assert!(
            matches!(
                err,
                WheelError::Metadata { .. } | WheelError::NotPurePython { .. }
            ),
            "{wheel:?}: {err}"
        );
    }
    let mut files = good_files();
    files[0].1 = b"Wheel-Version: 1.0\nRoot-Is-Purelib: false\n".to_vec();
    let err = check(&files, &Knobs::default()).unwrap_err();
    assert!(err.to_string().contains("Root-Is-Purelib"), "{err}");
    files[0].1 = b"wheel-version: 1.9\r\nroot-is-purelib: TRUE\r\n".to_vec();
    check(&files, &Knobs::default()).unwrap();
}

#[test]
fn metadata_must_name_the_project() {
    let mut files = good_files();
    files[1].1 = b"Metadata-Version: 2.1\nName: requests\nVersion: 1.0\n".to_vec();
    let err = check(&files, &Knobs::default()).unwrap_err();
    assert!(matches!(err, WheelError::Metadata { .. }), "{err}");
    files[1].1 = b"Metadata-Version: 2.1\nName: Demo_Pkg\n".to_vec();
    assert!(
        check(&files, &Knobs::default())
            .unwrap()
            .requires
            .is_empty()
    );
}

#[test]
fn headers_unfold_and_stop_at_the_body() {
    let parse = |text: &str| {
        let mut headers = Vec::new();
        parse_headers(text, |k, v| {
            headers.push(format!("{k}={v}"));
            Ok(())
        })
        .map(|()| headers)
    };
    let headers = parse("A: 1\r\nB: x\r\n  y\r\n\tz\r\n\r\nC: 3\r\n").unwrap();
    assert_eq!(headers, ["A=1", "B=x y z"]);
    assert_eq!(parse("A:1").unwrap(), ["A=1"]);
    assert!(parse(" continued\n").is_err());
    assert!(parse("no colon\n").is_err());
    assert!(parse("bad name: x\n").is_err());
}

#[test]
fn endless_requirements_are_refused() {
    let mut metadata = String::from("Name: demo_pkg\n");
    for i in 0..=MAX_REQUIRES {
        metadata.push_str(&format!("Requires-Dist: dep{i}\n"));
    }
    let mut files = good_files();
    files[1].1 = metadata.into_bytes();
    let err = check(&files, &Knobs::default()).unwrap_err();
    assert!(err.to_string().contains("Requires-Dist"), "{err}");
}
