//! A guest's database call (guest-sdk/ABI.md, op 16) as one tagged type: what the SDK sends,
//! what the host decodes, what the database layer runs and what the fuzz targets feed. An
//! operation the guest did not name cannot be mistaken for another.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::DbError;

/// One database call.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum DbRequest {
    /// `pq.dbconnect(name)`: whether the tenant has a database of that name.
    Connect {
        /// The tenant's name for the database.
        connection: String,
    },
    /// `with dbconn.transaction(db):` starts.
    Begin(Target),
    /// The transaction's block ended normally.
    Commit(Target),
    /// The transaction's block raised.
    Rollback(Target),
    /// `dbconn.fetch(...)`.
    Fetch(Fetch),
    /// `dbconn.insert(...)`.
    Insert(Write),
    /// `dbconn.update(...)`.
    Update(Write),
    /// `dbconn.upsert(...)`.
    Upsert(Write),
    /// `dbconn.delete(...)`.
    Delete(Write),
    /// `dbconn.execute(...)`.
    Execute(Execute),
}

/// Which of the tenant's databases a call is for: `db`, else the connection's.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Target {
    /// The database `dbconnect` opened.
    pub connection: String,
    /// The database the call names (Peliqan's first argument), if any.
    #[serde(default)]
    pub db: Option<String>,
}

impl Target {
    /// The tenant's name for the database the call is for.
    pub fn name(&self) -> &str {
        self.db.as_deref().unwrap_or(&self.connection)
    }
}

/// A fetch: a table (filtered, ordered, paged), or a query with bound parameters.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Fetch {
    /// The database.
    #[serde(flatten)]
    pub target: Target,
    /// The table's schema (default `public`).
    #[serde(default)]
    pub schema: Option<String>,
    /// The table, unless `options.query` is given.
    #[serde(default)]
    pub table: Option<String>,
    /// Filters, order, paging, or the query.
    #[serde(default)]
    pub options: FetchOptions,
    /// Keep the rows on the host, ready to be written into the response as these options
    /// say (`db/render.rs`), and answer with a handle on them.
    #[serde(default)]
    pub render: Option<super::render::RenderOptions>,
    /// Rows as objects (the default), or one list per column for a DataFrame
    /// (`db/columns.rs`); `render` does not apply to columns.
    #[serde(default)]
    pub layout: super::columns::Layout,
}

/// The keyword arguments of a fetch.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct FetchOptions {
    /// `where={column: value}`: rows whose columns equal these values.
    #[serde(default, rename = "where")]
    pub filter: Option<Map<String, Value>>,
    /// `order_by='name'` or `['name DESC', 'id']`.
    #[serde(default)]
    pub order_by: Option<OrderBy>,
    /// At most this many rows.
    #[serde(default)]
    pub limit: Option<u64>,
    /// Skip this many rows.
    #[serde(default)]
    pub offset: Option<u64>,
    /// A query with `%s` placeholders, instead of a table.
    #[serde(default)]
    pub query: Option<String>,
    /// The query's parameters.
    #[serde(default)]
    pub params: Option<Vec<Value>>,
}

/// A sort order: one column (with an optional direction), or several.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum OrderBy {
    /// `'name'`, `'name DESC'`.
    One(String),
    /// `['name DESC', 'id']`.
    Many(Vec<String>),
}

impl OrderBy {
    /// The terms, in order.
    pub fn terms(&self) -> &[String] {
        match self {
            OrderBy::One(one) => std::slice::from_ref(one),
            OrderBy::Many(many) => many,
        }
    }
}

/// An insert, update, upsert or delete of rows of one table.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Write {
    /// The database.
    #[serde(flatten)]
    pub target: Target,
    /// The table's schema (default `public`).
    #[serde(default)]
    pub schema: Option<String>,
    /// The table.
    pub table: String,
    /// Column → value (not for a delete).
    #[serde(default)]
    pub record: Option<Map<String, Value>>,
    /// The primary key's value, for a table with a one-column key.
    #[serde(default)]
    pub pk: Option<Value>,
    /// Column → value of the primary key.
    #[serde(default)]
    pub pk_columns: Option<Map<String, Value>>,
}

/// The rows a write names, before any catalogue lookup.
#[derive(Debug, Clone, PartialEq)]
pub enum NamedKeys<'a> {
    /// `pk_columns`: column → value.
    Columns(&'a Map<String, Value>),
    /// `pk`: a value of the table's one-column primary key, still to be looked up.
    Value(&'a Value),
}

impl Write {
    /// The primary key the write names: `pk_columns`, else `pk`.
    pub fn keys(&self) -> Result<NamedKeys<'_>, DbError> {
        if let Some(columns) = &self.pk_columns {
            if columns.is_empty() {
                return Err(DbError::Invalid(
                    "pk as a dict needs at least one column".into(),
                ));
            }
            return Ok(NamedKeys::Columns(columns));
        }
        self.pk
            .as_ref()
            .filter(|v| !v.is_null())
            .map(NamedKeys::Value)
            .ok_or_else(|| DbError::Invalid("a pk value is required".into()))
    }

    /// The record to write: a non-empty dict of column → value.
    pub fn record(&self) -> Result<&Map<String, Value>, DbError> {
        self.record
            .as_ref()
            .filter(|r| !r.is_empty())
            .ok_or_else(|| DbError::Invalid("record must be a non-empty dict".into()))
    }
}

/// `dbconn.execute(db, query, params)`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Execute {
    /// The database.
    #[serde(flatten)]
    pub target: Target,
    /// The statement, with `%s` placeholders.
    pub query: String,
    /// Its parameters.
    #[serde(default)]
    pub params: Option<Vec<Value>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(json: &[u8]) -> Result<DbRequest, serde_json::Error> {
        serde_json::from_slice(json)
    }

    #[test]
    fn what_the_sdk_sends_decodes_and_nothing_else_does() {
        let fetch = decode(
            br#"{"op":"fetch","connection":"dw","db":"dw_2","schema":null,"table":"t",
                 "options":{"where":{"a":1},"order_by":"a DESC","limit":5,"offset":null,
                            "query":null,"params":null}}"#,
        )
        .unwrap();
        let DbRequest::Fetch(fetch) = fetch else {
            panic!("{fetch:?}")
        };
        assert_eq!(fetch.target.name(), "dw_2");
        assert_eq!(fetch.options.order_by.unwrap().terms(), ["a DESC"]);
        let delete = decode(
            br#"{"op":"delete","connection":"dw","db":null,"schema":"s","table":"t","pk":7}"#,
        )
        .unwrap();
        let DbRequest::Delete(delete) = delete else {
            panic!("{delete:?}")
        };
        assert_eq!(delete.keys().unwrap(), NamedKeys::Value(&Value::from(7)));
        assert_eq!(delete.target.name(), "dw");
        // An unknown operation is refused, never taken for another one.
        for bad in [
            &br#"{"op":"drop","connection":"dw","table":"t","pk":1}"#[..],
            br#"{"connection":"dw","table":"t","pk":1}"#,
            br#"{"op":"delete","connection":"dw"}"#,
            br#"{"op":"execute","connection":"dw","query":5}"#,
            b"[]",
        ] {
            assert!(decode(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
