//! The statements behind `fetch`, `insert`, `update`, `upsert` and `delete`, built from the
//! guest's call with every identifier checked and every value bound.

use serde_json::{Map, Value};

use super::DbError;
use super::request::{Execute, Fetch, Write};
use super::sql::{Sql, identifier};

/// `"schema"."table"`, both checked; the schema defaults to `public`.
pub fn qualified_table(schema: Option<&str>, table: &str) -> Result<String, DbError> {
    Ok(format!(
        "{}.{}",
        identifier(schema.unwrap_or("public"))?,
        identifier(table)?
    ))
}

/// The SELECT of a fetch: `query` + `params`, or the table with `where`, `order_by`,
/// `limit` and `offset`.
pub fn select(fetch: &Fetch) -> Result<Sql, DbError> {
    let options = &fetch.options;
    let sql = match &options.query {
        Some(query) => {
            super::sql::with_placeholders(query, options.params.clone().unwrap_or_default())?
        }
        None => {
            let table = fetch
                .table
                .as_deref()
                .ok_or_else(|| DbError::Invalid("a table name (str) is required".into()))?;
            let mut sql = Sql::new(&format!(
                "SELECT * FROM {}",
                qualified_table(fetch.schema.as_deref(), table)?
            ));
            if let Some(filter) = options.filter.as_ref().filter(|f| !f.is_empty()) {
                sql.push(" WHERE ");
                matching(&mut sql, filter)?;
            }
            if let Some(order) = &options.order_by {
                let terms = order
                    .terms()
                    .iter()
                    .map(|item| order_term(item))
                    .collect::<Result<Vec<_>, _>>()?;
                sql.push(&format!(" ORDER BY {}", terms.join(", ")));
            }
            for (value, keyword) in [(options.limit, "LIMIT"), (options.offset, "OFFSET")] {
                if let Some(n) = value {
                    sql.push(&format!(" {keyword} {n}"));
                }
            }
            sql
        }
    };
    refuse_session_control(&sql)?;
    Ok(sql)
}

/// `column` or `column ASC|DESC`, checked.
fn order_term(item: &str) -> Result<String, DbError> {
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
    Ok(format!("{column}{direction}"))
}

/// The statement of `dbconn.execute`.
pub fn execute(execute: &Execute) -> Result<Sql, DbError> {
    let sql =
        super::sql::with_placeholders(&execute.query, execute.params.clone().unwrap_or_default())?;
    refuse_session_control(&sql)?;
    Ok(sql)
}

/// What a write does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    /// `INSERT ... RETURNING *`.
    Insert,
    /// `UPDATE ... WHERE <keys> RETURNING *`.
    Update,
    /// `INSERT ... ON CONFLICT (<keys>) DO UPDATE ... RETURNING *`.
    Upsert,
    /// `DELETE ... WHERE <keys>`.
    Delete,
}

/// The statement of a write, given the primary key's columns and values it names (resolved
/// from `pk` by a catalogue lookup, or `pk_columns` as given; unused by an insert).
pub fn write(kind: WriteKind, write: &Write, keys: &Map<String, Value>) -> Result<Sql, DbError> {
    let table = qualified_table(write.schema.as_deref(), &write.table)?;
    match kind {
        WriteKind::Insert => {
            let mut sql = insert(&table, write.record()?)?;
            sql.push(" RETURNING *");
            Ok(sql)
        }
        WriteKind::Update => update(&table, keys, write.record()?),
        WriteKind::Upsert => upsert(&table, keys, write.record.as_ref().unwrap_or(&Map::new())),
        WriteKind::Delete => delete(&table, keys),
    }
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
/// (the host begins, commits and rolls back; `dbconn.transaction(db)` spans calls), those
/// that change the session's role, and those that change the caller's claims pubfn puts in
/// `request.*` (`SET`/`RESET request.…`, `RESET ALL`, or `set_config` anywhere in the text).
/// The role's lack of rights is what keeps a tenant in; this turns the attempt into a clear
/// error. The claims are guarded only this far: a function the tenant created can still call
/// `set_config`, which is the tenant's own code choosing to (README, "row-level security").
pub fn refuse_session_control(sql: &Sql) -> Result<(), DbError> {
    let text = sql.render(&[]);
    if text.to_ascii_lowercase().contains("set_config") {
        return Err(DbError::Invalid(
            "set_config is not allowed here: request.jwt.claims and request.endpoint are set by \
             pubfn for the caller"
                .into(),
        ));
    }
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
        if target == "REQUEST" || (word(0) == "RESET" && target == "ALL") {
            return Err(DbError::Invalid(
                "request.* settings carry the caller's claims and are set by pubfn".into(),
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
            "SELECT set_config('request.jwt.claims', '{}', true)",
            "select * from t where pg_catalog.SET_CONFIG('x', 'y', false) is not null",
            "SET request.jwt.claims = '{}'",
            "set local \"request.jwt.claims\" to '{}'",
            "RESET request.endpoint",
            "RESET ALL",
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
        assert!(qualified_table(Some("x\"; drop table t; --"), "t").is_err());
        assert!(delete("\"t\"", &Map::new()).is_err());
    }
}
