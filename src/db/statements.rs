//! The statements behind `fetch`, `insert`, `update`, `upsert` and `delete`, built from the
//! guest's call with every identifier checked and every value bound.

use serde_json::{Map, Value};

use super::DbError;
use super::sql::{Sql, identifier};

/// `"schema"."table"`, both checked; the schema defaults to `public`.
pub fn qualified_table(request: &Map<String, Value>) -> Result<String, DbError> {
    let schema = match request.get("schema") {
        None | Some(Value::Null) => "public",
        Some(Value::String(s)) => s,
        Some(_) => return Err(DbError::Invalid("schema must be a string".into())),
    };
    let table = request
        .get("table")
        .and_then(Value::as_str)
        .ok_or_else(|| DbError::Invalid("a table name (str) is required".into()))?;
    Ok(format!("{}.{}", identifier(schema)?, identifier(table)?))
}

/// The SELECT of a fetch: `query` + `params`, or the table with `where`, `order_by`,
/// `limit` and `offset`.
pub fn select(request: &Map<String, Value>, options: &Map<String, Value>) -> Result<Sql, DbError> {
    if let Some(query) = options.get("query").filter(|v| !v.is_null()) {
        let query = query
            .as_str()
            .ok_or_else(|| DbError::Invalid("query must be a string".into()))?;
        return super::sql::with_placeholders(query, params(options.get("params"))?);
    }
    let mut sql = Sql::new(&format!("SELECT * FROM {}", qualified_table(request)?));
    if let Some(filter) = options.get("where").filter(|v| !v.is_null()) {
        let filter = filter
            .as_object()
            .ok_or_else(|| DbError::Invalid("where must be a dict".into()))?;
        if !filter.is_empty() {
            sql.push(" WHERE ");
            matching(&mut sql, filter)?;
        }
    }
    if let Some(order) = options.get("order_by").filter(|v| !v.is_null()) {
        let items: Vec<&str> = match order {
            Value::String(one) => vec![one],
            Value::Array(many) => many.iter().map(|v| v.as_str().unwrap_or("")).collect(),
            _ => {
                return Err(DbError::Invalid(
                    "order_by must be a column or a list of columns".into(),
                ));
            }
        };
        let mut terms = Vec::new();
        for item in items {
            let mut words = item.split_whitespace();
            let column = identifier(words.next().unwrap_or(""))?;
            let direction = match words.next().map(str::to_ascii_uppercase).as_deref() {
                None => "",
                Some("ASC") => " ASC",
                Some("DESC") => " DESC",
                Some(other) => {
                    return Err(DbError::Invalid(format!(
                        "unknown sort direction {other:?}"
                    )));
                }
            };
            if words.next().is_some() {
                return Err(DbError::Invalid(format!("invalid order_by {item:?}")));
            }
            terms.push(format!("{column}{direction}"));
        }
        sql.push(&format!(" ORDER BY {}", terms.join(", ")));
    }
    for (key, keyword) in [("limit", "LIMIT"), ("offset", "OFFSET")] {
        if let Some(value) = options.get(key).filter(|v| !v.is_null()) {
            let n = value
                .as_u64()
                .ok_or_else(|| DbError::Invalid(format!("{key} must be a non-negative integer")))?;
            sql.push(&format!(" {keyword} {n}"));
        }
    }
    Ok(sql)
}

/// `params=[...]` of a query.
pub fn params(value: Option<&Value>) -> Result<Vec<Value>, DbError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(params)) => Ok(params.clone()),
        Some(_) => Err(DbError::Invalid("params must be a list".into())),
    }
}

/// The record of a write: a non-empty dict of column → value.
pub fn record(request: &Map<String, Value>) -> Result<&Map<String, Value>, DbError> {
    request
        .get("record")
        .and_then(Value::as_object)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| DbError::Invalid("record must be a non-empty dict".into()))
}

/// `INSERT ... RETURNING *`.
pub fn insert(table: &str, record: &Map<String, Value>) -> Result<Sql, DbError> {
    let mut sql = Sql::new(&format!("INSERT INTO {table} ("));
    column_list(&mut sql, record)?;
    sql.push(") VALUES (");
    for (i, value) in record.values().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.param(value.clone())?;
    }
    sql.push(")");
    Ok(sql)
}

/// `UPDATE ... SET ... WHERE <keys> RETURNING *`.
pub fn update(
    table: &str,
    keys: &Map<String, Value>,
    record: &Map<String, Value>,
) -> Result<Sql, DbError> {
    let mut sql = Sql::new(&format!("UPDATE {table} SET "));
    for (i, (column, value)) in record.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.push(&format!("{} = ", identifier(column)?));
        sql.param(value.clone())?;
    }
    sql.push(" WHERE ");
    matching(&mut sql, keys)?;
    sql.push(" RETURNING *");
    Ok(sql)
}

/// `INSERT ... ON CONFLICT (<keys>) DO UPDATE ... RETURNING *`: the keys' values are part of
/// the inserted row, and columns the record leaves out keep their values on update.
pub fn upsert(
    table: &str,
    keys: &Map<String, Value>,
    record: &Map<String, Value>,
) -> Result<Sql, DbError> {
    let mut row = keys.clone();
    for (column, value) in record {
        row.insert(column.clone(), value.clone());
    }
    let mut sql = insert(table, &row)?;
    let conflict: Vec<String> = keys
        .keys()
        .map(|k| identifier(k))
        .collect::<Result<_, _>>()?;
    sql.push(&format!(
        " ON CONFLICT ({}) DO UPDATE SET ",
        conflict.join(", ")
    ));
    // Setting a key to itself keeps RETURNING a row when the record has nothing else.
    let updated: Vec<&String> = match row
        .keys()
        .filter(|c| !keys.contains_key(*c))
        .collect::<Vec<_>>()
    {
        none if none.is_empty() => keys.keys().collect(),
        some => some,
    };
    let sets: Vec<String> = updated
        .iter()
        .map(|c| identifier(c).map(|c| format!("{c} = EXCLUDED.{c}")))
        .collect::<Result<_, _>>()?;
    sql.push(&sets.join(", "));
    sql.push(" RETURNING *");
    Ok(sql)
}

/// `DELETE ... WHERE <keys>`.
pub fn delete(table: &str, keys: &Map<String, Value>) -> Result<Sql, DbError> {
    let mut sql = Sql::new(&format!("DELETE FROM {table} WHERE "));
    matching(&mut sql, keys)?;
    Ok(sql)
}

/// `col = $n AND ...`, with `IS NULL` for a null value.
fn matching(sql: &mut Sql, filter: &Map<String, Value>) -> Result<(), DbError> {
    if filter.is_empty() {
        return Err(DbError::Invalid("no columns to match rows by".into()));
    }
    for (i, (column, value)) in filter.iter().enumerate() {
        if i > 0 {
            sql.push(" AND ");
        }
        if value.is_null() {
            sql.push(&format!("{} IS NULL", identifier(column)?));
        } else {
            sql.push(&format!("{} = ", identifier(column)?));
            sql.param(value.clone())?;
        }
    }
    Ok(())
}

fn column_list(sql: &mut Sql, record: &Map<String, Value>) -> Result<(), DbError> {
    let columns: Vec<String> = record
        .keys()
        .map(|k| identifier(k))
        .collect::<Result<_, _>>()?;
    sql.push(&columns.join(", "));
    Ok(())
}

/// Refuses statements that would end or nest the transaction the host runs every call in
/// (the host begins, commits and rolls back; `dbconn.transaction(db)` spans calls), and those
/// that change the session's role. The role's lack of rights is what keeps a tenant in; this
/// only turns the attempt into a clear error.
pub fn refuse_session_control(sql: &Sql) -> Result<(), DbError> {
    let text = sql.render(&[]);
    let mut rest = text.as_str();
    // Skip whitespace and comments before the first keyword.
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r);
        } else {
            break;
        }
    }
    let words: Vec<String> = rest
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
        .take(4)
        .map(str::to_ascii_uppercase)
        .collect();
    let word = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    const TRANSACTION: &[&str] = &[
        "BEGIN",
        "START",
        "COMMIT",
        "END",
        "ROLLBACK",
        "ABORT",
        "SAVEPOINT",
        "RELEASE",
        "PREPARE",
    ];
    if TRANSACTION.contains(&word(0)) {
        return Err(DbError::Invalid(format!(
            "{} is not allowed here: every call runs in a transaction of its own; \
             use `with dbconn.transaction(db):` to group calls",
            word(0)
        )));
    }
    if matches!(word(0), "SET" | "RESET") {
        let target = if matches!(word(1), "SESSION" | "LOCAL") && word(2) != "AUTHORIZATION" {
            word(2)
        } else {
            word(1)
        };
        let authorization = word(1) == "SESSION" && word(2) == "AUTHORIZATION";
        if target == "ROLE" || authorization {
            return Err(DbError::Invalid(
                "changing the session's role is not allowed".into(),
            ));
        }
    }
    Ok(())
}

/// The SQL that lists a table's primary-key columns, in key order (`$1` is the quoted
/// `"schema"."table"`).
pub const PRIMARY_KEY_COLUMNS: &str = "SELECT a.attname::text FROM pg_index i \
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
    WHERE i.indrelid = to_regclass($1) AND i.indisprimary \
    ORDER BY array_position(i.indkey::int2[], a.attnum)";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn writes_bind_every_value() {
        let record = map(json!({"name": "x'); drop table t; --", "n": 2}));
        let keys = map(json!({"id": 7}));
        let sql = insert("\"s\".\"t\"", &record).unwrap();
        assert_eq!(
            sql.render(&[]),
            "INSERT INTO \"s\".\"t\" (\"n\", \"name\") VALUES ($1, $2)"
        );
        let sql = update("\"t\"", &keys, &record).unwrap();
        assert_eq!(
            sql.render(&[]),
            "UPDATE \"t\" SET \"n\" = $1, \"name\" = $2 WHERE \"id\" = $3 RETURNING *"
        );
        let sql = upsert("\"t\"", &keys, &record).unwrap();
        assert_eq!(
            sql.render(&[]),
            "INSERT INTO \"t\" (\"id\", \"n\", \"name\") VALUES ($1, $2, $3) ON CONFLICT (\"id\") \
             DO UPDATE SET \"n\" = EXCLUDED.\"n\", \"name\" = EXCLUDED.\"name\" RETURNING *"
        );
        let only_keys = upsert("\"t\"", &keys, &map(json!({}))).unwrap();
        assert!(
            only_keys
                .render(&[])
                .contains("DO UPDATE SET \"id\" = EXCLUDED.\"id\"")
        );
        let sql = delete("\"t\"", &map(json!({"a": 1, "b": null}))).unwrap();
        assert_eq!(
            sql.render(&[]),
            "DELETE FROM \"t\" WHERE \"a\" = $1 AND \"b\" IS NULL"
        );
    }

    #[test]
    fn transaction_and_role_control_are_refused() {
        for text in [
            "COMMIT",
            " /* x */ -- y\n rollback",
            "begin",
            "END",
            "savepoint a",
            "SET ROLE postgres",
            "set local role x",
            "RESET ROLE",
            "SET SESSION AUTHORIZATION postgres",
            "RESET SESSION AUTHORIZATION",
            "SET SESSION ROLE x",
        ] {
            assert!(refuse_session_control(&Sql::new(text)).is_err(), "{text}");
        }
        for text in [
            "SELECT 1",
            "UPDATE t SET begin = 1",
            "/* COMMIT */ SELECT 1",
            "SET search_path = x",
            "SET LOCAL work_mem = '1MB'",
        ] {
            assert!(refuse_session_control(&Sql::new(text)).is_ok(), "{text}");
        }
    }

    #[test]
    fn bad_identifiers_are_refused() {
        let record = map(json!({"a\"; drop table t; --": 1}));
        assert!(insert("\"t\"", &record).is_err());
        let request = map(json!({"schema": "x\"; drop table t; --", "table": "t"}));
        assert!(qualified_table(&request).is_err());
        assert!(delete("\"t\"", &Map::new()).is_err());
    }
}
