//! The database half of the ABI target: a guest's call decoded as host/db.rs decodes it, then
//! planned into SQL by the builders db/access.rs uses, and its parameters encoded as
//! db/convert.rs sends them, stopping short of PostgreSQL.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use pubfn::db::convert::{Param, encoded_natively, text_cast};
use pubfn::db::request::{NamedKeys, Write};
use pubfn::db::sql::{self, Sql};
use pubfn::db::statements::{self, WriteKind};
use pubfn::db::{DatabaseCapability, DbError, DbRequest};
use pubfn::host::AbiError;
use serde_json::{Map, Value};
use tokio_postgres::types::{ToSql, Type};

use super::{ready, refused};

/// Types PostgreSQL may infer for a parameter: all that the host encodes itself, and some that
/// it refuses to (those travel as text with a cast).
const TYPES: &[Type] = &[
    Type::BOOL,
    Type::INT2,
    Type::INT4,
    Type::INT8,
    Type::FLOAT4,
    Type::FLOAT8,
    Type::NUMERIC,
    Type::TEXT,
    Type::VARCHAR,
    Type::BPCHAR,
    Type::NAME,
    Type::UNKNOWN,
    Type::JSON,
    Type::JSONB,
    Type::BYTEA,
    Type::DATE,
    Type::UUID,
    Type::INTERVAL,
    Type::INT4_ARRAY,
];

/// Plans each call as db/access.rs does, up to the statement it would prepare. A write's `pk`
/// is taken as the value of a one-column key named `id` (access/keys.rs asks PostgreSQL).
struct Planner;

#[async_trait::async_trait]
impl DatabaseCapability for Planner {
    async fn call(&self, request: &DbRequest, _: Instant) -> Result<Vec<u8>, DbError> {
        plan(request).map(|sql| sql.render(&[]).into_bytes())
    }
}

/// `PQ_OP_DB`: without a database (the guest learns it has none) and with the planner.
pub fn call(arg: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let error = ready(pubfn::host::db::call(None, deadline, arg, &mut Default::default()))
        .expect_err("a database call without a database fails");
    refused(&error);
    assert!(matches!(
        error.code,
        AbiError::INVALID | AbiError::UNAVAILABLE
    ));
    if let Err(error) = ready(pubfn::host::db::call(Some(&Planner), deadline, arg, &mut Default::default())) {
        refused(&error);
    }
}

fn plan(request: &DbRequest) -> Result<Sql, DbError> {
    let write = |kind: WriteKind, write: &Write| statements::write(kind, write, &keys(write)?);
    let sql = match request {
        DbRequest::Connect { .. }
        | DbRequest::Begin(_)
        | DbRequest::Commit(_)
        | DbRequest::Rollback(_) => Sql::new(""),
        DbRequest::Fetch(fetch) => statements::select(fetch)?,
        DbRequest::Execute(execute) => statements::execute(execute)?,
        DbRequest::Insert(w) => write(WriteKind::Insert, w)?,
        DbRequest::Update(w) => write(WriteKind::Update, w)?,
        DbRequest::Upsert(w) => write(WriteKind::Upsert, w)?,
        DbRequest::Delete(w) => write(WriteKind::Delete, w)?,
    };
    bind(&sql);
    Ok(sql)
}

/// The real reading of `pk_columns`/`pk`; the catalogue lookup a scalar `pk` needs is
/// replaced by a column named `id`.
fn keys(write: &Write) -> Result<Map<String, Value>, DbError> {
    Ok(match write.keys()? {
        NamedKeys::Columns(columns) => columns.clone(),
        NamedKeys::Value(value) => Map::from_iter([("id".to_string(), value.clone())]),
    })
}

/// Renders `sql` with text casts on every other parameter, as db/run.rs re-prepares it, and
/// encodes every parameter as each type PostgreSQL might have inferred for it.
fn bind(sql: &Sql) {
    let casts: Vec<Option<String>> = (0..sql.params.len())
        .map(|i| (i % 2 == 1).then(|| text_cast(&Type::DATE)))
        .collect();
    let text = sql.render(&casts);
    if !sql.params.is_empty() {
        assert!(text.contains(&format!("${}", sql.params.len())), "{text}");
    }
    for value in &sql.params {
        for ty in TYPES {
            encode(value, ty);
        }
    }
}

fn encode(value: &Value, ty: &Type) -> Option<BytesMut> {
    if !encoded_natively(ty) {
        assert!(text_cast(ty).starts_with("\"pg_catalog\"."));
    }
    let mut out = BytesMut::new();
    Param(value.clone()).to_sql(ty, &mut out).ok().map(|_| out)
}

/// `%s` placeholders in arbitrary text, with none and with as many parameters as `%s` appear.
pub fn placeholders(arg: &[u8]) {
    let query = String::from_utf8_lossy(arg);
    let marks = query.matches("%s").count();
    for given in [0, marks] {
        let params: Vec<Value> = (0..given).map(Value::from).collect();
        if let Ok(sql) = sql::with_placeholders(&query, params) {
            assert_eq!(sql.params.len(), given);
            let _ = statements::refuse_session_control(&sql);
            bind(&sql);
        }
    }
}

/// Identifier checks: what is accepted needs no escaping inside its quotes.
pub fn identifiers(arg: &[u8]) {
    let name = String::from_utf8_lossy(arg);
    if let Ok(quoted) = sql::identifier(&name) {
        assert_eq!(quoted, format!("\"{name}\""));
        assert!(!name.contains(['"', '\0', ';', ' ', '.']));
    }
    let (schema, table) = name.split_once('.').unwrap_or(("public", &name));
    if let Ok(table) = statements::qualified_table(Some(schema), table) {
        assert_eq!(table.matches('"').count(), 4, "{table}");
    }
    let quoted = pubfn::db::tenantdb::quote_ident(&name);
    let inner = &quoted[1..quoted.len() - 1];
    assert_eq!(inner.replace("\"\"", "\""), name);
}

/// A guest value bound as every type; and the text bound as `numeric`, which must encode the
/// same number in a form PostgreSQL's `numeric_recv` accepts.
pub fn params(arg: &[u8]) {
    let value = serde_json::from_slice(arg)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(arg).into_owned()));
    for ty in TYPES {
        encode(&value, ty);
    }
    let text = String::from_utf8_lossy(arg);
    if let Some(bytes) = encode(&Value::String(text.to_string()), &Type::NUMERIC) {
        check_numeric(text.trim(), &bytes);
    }
}

fn check_numeric(text: &str, bytes: &[u8]) {
    let word = |i: usize| i16::from_be_bytes([bytes[2 * i], bytes[2 * i + 1]]);
    let (ndigits, weight, sign, dscale) = (word(0), word(1), word(2) as u16, word(3));
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if sign == 0xC000 {
        return assert!(
            unsigned.eq_ignore_ascii_case("nan"),
            "{text:?} encoded as NaN"
        );
    }
    assert_eq!(bytes.len(), 8 + 2 * ndigits as usize, "{text:?}");
    let digits: Vec<i16> = (0..ndigits as usize).map(|i| word(4 + i)).collect();
    assert!(digits.iter().all(|d| (0..10_000).contains(d)), "{text:?}");
    assert!(
        digits.first() != Some(&0) && digits.last() != Some(&0),
        "{text:?}"
    );
    // The value is the sum of digits[i] * 10000^(weight - i).
    let group = |power: i32| {
        usize::try_from(i32::from(weight) - power)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let lowest = i32::from(weight) - i32::from(ndigits) + 1;
    let int: String = (0..=i32::from(weight))
        .rev()
        .map(|p| format!("{:04}", group(p)))
        .collect();
    let frac: String = (lowest.min(0)..0)
        .rev()
        .map(|p| format!("{:04}", group(p)))
        .collect();
    let (int_text, frac_text) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let decoded = (int.trim_start_matches('0'), frac.trim_end_matches('0'));
    let expected = (
        int_text.trim_start_matches('0'),
        frac_text.trim_end_matches('0'),
    );
    assert_eq!(decoded, expected, "{text:?}");
    let negative = text.starts_with('-') && !digits.is_empty();
    assert_eq!(sign, if negative { 0x4000 } else { 0 }, "{text:?}");
    assert_eq!(dscale as usize, frac_text.len(), "{text:?}");
}
