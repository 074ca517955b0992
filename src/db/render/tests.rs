use super::*;

fn options() -> RenderOptions {
    RenderOptions::sdk_defaults()
}

fn rendered(columns: &str, rows: &str, options: &RenderOptions) -> Option<String> {
    let result = format!(r#"{{"columns":{columns},"rows":[{rows}]}}"#);
    render(result.as_bytes(), options).map(|(json, _)| String::from_utf8(json).unwrap())
}

#[test]
fn rows_are_written_as_the_python_path_writes_them() {
    let columns = r#"[{"name":"id","type":"int4"},{"name":"amount","type":"numeric"},
        {"name":"score","type":"float8"},{"name":"at","type":"timestamptz"},
        {"name":"doc","type":"jsonb"},{"name":"tags","type":"_text"},{"name":"raw","type":"bytea"}]"#;
    let rows = r#"{"id":1,"amount":12.50,"score":3,"at":"2026-12-01T10:00:00.5+00:00","doc":{"a": 1.0, "b": [1, "x"]},"tags":["a","b"],"raw":"\\x0001"},
        {"id":2,"amount":100.00,"score":"NaN","at":null,"doc":null,"tags":null,"raw":null}"#;
    assert_eq!(
        rendered(columns, rows, &options()).unwrap(),
        r#"[{"id":1,"amount":12.5,"score":3.0,"at":"2026-12-01T10:00:00.5+00:00","doc":{"a":1.0,"b":[1,"x"]},"tags":["a","b"],"raw":"AAE="},{"id":2,"amount":100,"score":NaN,"at":null,"doc":null,"tags":null,"raw":null}]"#
    );
    let mut objects = options();
    objects.datetime_as_string = false;
    objects.fillna = Some("0".into());
    objects.fillnat = Some("\"never\"".into());
    assert_eq!(
        rendered(
            r#"[{"name":"at","type":"timestamptz"},{"name":"n","type":"int4"}]"#,
            r#"{"at":"2026-12-01T10:00:00.5+00:00","n":null},{"at":null,"n":2}"#,
            &objects
        )
        .unwrap(),
        r#"[{"at":"2026-12-01T10:00:00.500000+00:00","n":0},{"at":"never","n":2}]"#
    );
}

#[test]
fn what_python_would_do_differently_is_left_to_python() {
    let duplicate = r#"[{"name":"a","type":"int4"},{"name":"a","type":"int4"}]"#;
    assert!(rendered(duplicate, r#"{"a":1,"a":2}"#, &options()).is_none());
    let composite = r#"[{"name":"c","type":"mytype"}]"#;
    assert!(rendered(composite, r#"{"c":{"x":1}}"#, &options()).is_none());
    let mut objects = options();
    objects.datetime_as_string = false;
    assert!(
        rendered(
            r#"[{"name":"t","type":"timestamp"}]"#,
            r#"{"t":"infinity"}"#,
            &objects
        )
        .is_none()
    );
    assert_eq!(rendered("[]", "", &options()).unwrap(), "[]");
}
