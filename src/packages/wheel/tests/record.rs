//! RECORD: hashes, sizes, files listed and not, its CSV.

use super::*;
use crate::packages::wheel::record::RecordRows;

#[track_caller]
fn assert_record(result: Result<Wheel, WheelError>, path: &str, reason: &str) {
    match result {
        Err(WheelError::Record { path: p, reason: r }) => {
            assert_eq!(p, path);
            assert!(r.contains(reason), "{r}");
        }
        other => panic!("expected a RECORD error, got {other:?}"),
    }
}

#[test]
fn a_wrong_hash_is_refused() {
    let knobs = Knobs {
        wrong_hash: vec!["demo_pkg/util.py"],
        ..Knobs::default()
    };
    assert_record(
        check(&good_files(), &knobs),
        "demo_pkg/util.py",
        "does not match",
    );
}

#[test]
fn a_wrong_size_is_refused() {
    let knobs = Knobs {
        unlisted: vec!["helper.py"],
        extra_rows: vec![format!(
            "helper.py,sha256={},3",
            URL_SAFE_NO_PAD.encode(Sha256::digest(b"def help(): pass\n"))
        )],
        ..Knobs::default()
    };
    assert_record(check(&good_files(), &knobs), "helper.py", "size");
}

#[test]
fn a_file_missing_from_record_is_refused() {
    let knobs = Knobs {
        unlisted: vec!["helper.py"],
        ..Knobs::default()
    };
    assert_record(check(&good_files(), &knobs), "helper.py", "not listed");
}

#[test]
fn record_naming_a_missing_file_is_refused() {
    let knobs = Knobs {
        extra_rows: vec!["demo_pkg/ghost.py,sha256=AAAA,4".into()],
        ..Knobs::default()
    };
    assert_record(
        check(&good_files(), &knobs),
        "demo_pkg/ghost.py",
        "not in the wheel",
    );
}

#[test]
fn hashes_other_than_sha256_are_refused() {
    for algorithm in ["md5", "sha1"] {
        let knobs = Knobs {
            algorithm: Some(algorithm),
            ..Knobs::default()
        };
        let err = check(&good_files(), &knobs).unwrap_err();
        assert!(err.to_string().contains(algorithm), "{err}");
        assert!(matches!(err, WheelError::Record { .. }), "{err}");
    }
    let knobs = Knobs {
        unlisted: vec!["helper.py"],
        extra_rows: vec!["helper.py,,".into()],
        ..Knobs::default()
    };
    assert_record(check(&good_files(), &knobs), "helper.py", "only sha256");
}

#[test]
fn record_fields_may_be_quoted() {
    let contents = b"v = 1\n";
    let digest = URL_SAFE_NO_PAD.encode(Sha256::digest(contents));
    let knobs = Knobs {
        unlisted: vec!["demo_pkg/a,\"b\".py"],
        extra_rows: vec![format!(
            "\"demo_pkg/a,\"\"b\"\".py\",\"sha256={digest}\",\"6\"\r"
        )],
        ..Knobs::default()
    };
    let files = with(&[("demo_pkg/a,\"b\".py", contents)]);
    let wheel = check(&files, &knobs).unwrap();
    assert!(wheel.files.iter().any(|f| f.path == "demo_pkg/a,\"b\".py"));
}

#[test]
fn csv_is_split_like_pythons_csv_module() {
    let rows: Vec<Vec<String>> =
        RecordRows::new("a,b,c\r\n\n\"x,\"\"y\",,\"1\"\n\"multi\nline\",2,\n")
            .collect::<Result<_, _>>()
            .unwrap();
    assert_eq!(
        rows,
        [
            vec!["a", "b", "c"],
            vec!["x,\"y", "", "1"],
            vec!["multi\nline", "2", ""],
        ]
    );
    for bad in ["\"open,1,2\n", "a\"b,1,2\n", "\"a\"b,1,2\n", "a,b,c,d\n"] {
        let rows: Result<Vec<_>, _> = RecordRows::new(bad).collect();
        assert!(rows.is_err(), "{bad:?}");
    }
}
