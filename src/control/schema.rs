//! JSON Schemas an endpoint declares for its bodies (`request_schema`, `response_schema`):
//! checked when deployed, compiled once per tenant view, and the request's applied by the host
//! before the handler runs.
//!
//! The schema is the tenant's and the body the client's, and both are evaluated in the host,
//! outside any sandbox: so `pattern`s use the `regex` crate (linear time, no backtracking) with
//! a size limit, nothing is fetched (`$ref`s resolve only within the schema: the crate's
//! HTTP and file resolvers are not compiled in), and the schema itself is bounded in size.

use serde::Serialize;
use serde_json::Value;

use super::ControlError;

/// Largest schema, as JSON text.
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;
/// Violations listed in one answer at most: enough to fix a request, bounded for a huge one.
pub const MAX_VIOLATIONS: usize = 20;
/// Largest compiled `pattern`, in bytes of the regex engine's program.
const MAX_PATTERN_BYTES: usize = 1 << 20;
/// Longest violation message kept, in characters (messages quote the offending value).
const MAX_MESSAGE_CHARS: usize = 300;

/// A compiled JSON Schema and its source.
pub struct BodySchema {
    source: Value,
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for BodySchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodySchema")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// One way a body misses its schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// JSON Pointer to the offending part of the body (`""` is the whole body).
    pub pointer: String,
    /// What is wrong there.
    pub message: String,
}

impl BodySchema {
    /// Compiles `source`, the endpoint's `field` (named in the error): JSON Schema 2020-12
    /// unless its `$schema` names another draft.
    pub fn compile(field: &str, source: &Value) -> Result<Self, ControlError> {
        let invalid = |why: String| ControlError::Invalid(format!("{field}: {why}"));
        let size = serde_json::to_vec(source).map_or(usize::MAX, |text| text.len());
        if size > MAX_SCHEMA_BYTES {
            return Err(invalid(format!(
                "{size} bytes of JSON, over the limit of {MAX_SCHEMA_BYTES}"
            )));
        }
        if !(source.is_object() || source.is_boolean()) {
            return Err(invalid("a JSON Schema is an object (or true/false)".into()));
        }
        let validator = jsonschema::options()
            .with_pattern_options(jsonschema::PatternOptions::regex().size_limit(MAX_PATTERN_BYTES))
            .build(source)
            .map_err(|e| invalid(format!("not a usable JSON Schema: {e}")))?;
        Ok(BodySchema {
            source: source.clone(),
            validator,
        })
    }

    /// The schema as the tenant wrote it.
    pub fn source(&self) -> &Value {
        &self.source
    }

    /// How `body` misses the schema: empty when it matches; at most [`MAX_VIOLATIONS`].
    pub fn violations(&self, body: &Value) -> Vec<Violation> {
        self.validator
            .iter_errors(body)
            .take(MAX_VIOLATIONS)
            .map(|error| Violation {
                pointer: error.instance_path().to_string(),
                message: error.to_string().chars().take(MAX_MESSAGE_CHARS).collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> BodySchema {
        BodySchema::compile(
            "request_schema",
            &json!({"type": "object", "required": ["name"],
                    "properties": {"name": {"type": "string", "pattern": "^[a-z]+$"},
                                   "qty": {"type": "integer", "minimum": 1}},
                    "additionalProperties": false}),
        )
        .unwrap()
    }

    #[test]
    fn lists_every_violation_with_where_it_is() {
        let schema = schema();
        assert!(
            schema
                .violations(&json!({"name": "abc", "qty": 2}))
                .is_empty()
        );
        let found = schema.violations(&json!({"name": "ABC", "qty": 0, "extra": true}));
        let pointers: Vec<&str> = found.iter().map(|v| v.pointer.as_str()).collect();
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(
            pointers.contains(&"/name") && pointers.contains(&"/qty"),
            "{found:?}"
        );
        assert!(
            found.iter().any(|v| v.message.contains("extra")),
            "{found:?}"
        );
        let missing = schema.violations(&json!([]));
        assert_eq!(missing[0].pointer, "");
    }

    #[test]
    fn many_violations_are_capped_and_long_messages_cut() {
        let schema =
            BodySchema::compile("s", &json!({"type": "array", "items": {"type": "integer"}}))
                .unwrap();
        let body = Value::Array(vec![json!("x".repeat(10_000)); 1000]);
        let found = schema.violations(&body);
        assert_eq!(found.len(), MAX_VIOLATIONS);
        assert!(found[0].message.chars().count() <= MAX_MESSAGE_CHARS);
    }

    #[test]
    fn refuses_what_is_not_a_usable_schema() {
        let refused = |source: Value| match BodySchema::compile("request_schema", &source) {
            Err(ControlError::Invalid(message)) => message,
            other => panic!("{source} was not refused: {other:?}"),
        };
        assert!(refused(json!({"type": 12})).starts_with("request_schema: "));
        assert!(refused(json!("string")).contains("object"));
        assert!(refused(json!({"pattern": "("})).contains("JSON Schema"));
        // Nothing is fetched: a remote or file reference cannot be resolved.
        refused(json!({"$ref": "https://example.com/schema.json"}));
        refused(json!({"$ref": "file:///etc/passwd"}));
        let huge = json!({"description": "x".repeat(MAX_SCHEMA_BYTES)});
        assert!(refused(huge).contains("over the limit"));
    }

    #[test]
    fn a_backtracking_pattern_runs_in_linear_time() {
        // With a backtracking engine, (a+)+$ against 'a'*64 + 'b' would not finish.
        let schema =
            BodySchema::compile("s", &json!({"type": "string", "pattern": "^(a+)+$"})).unwrap();
        let found = schema.violations(&json!(format!("{}b", "a".repeat(100_000))));
        assert_eq!(found.len(), 1);
    }
}
