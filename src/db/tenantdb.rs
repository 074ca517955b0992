//! Managed tenant databases: a PostgreSQL database per (tenant, name), reached as a role made
//! for the tenant. The database is the tenant's warehouse: the role owns its `public` schema
//! and may create schemas (and in them tables, views, indexes, functions) of its own.
//!
//! The role is `LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS`,
//! belongs to no predefined role (so no `pg_read_server_files`, `pg_execute_server_program`,
//! ...), and gets `CONNECT`, `TEMPORARY` and `CREATE` on its own databases only (`PUBLIC` loses
//! `CONNECT` everywhere). `CREATE` on a database also lets a role install extensions that
//! PostgreSQL marks trusted (`pgcrypto`, `hstore`, ...); untrusted ones (`dblink`, `plpython3u`,
//! `file_fdw`) still need a superuser.
//!
//! Database and role names are random (`pf_d_…`, `pf_r_…`): every role can read the catalogue's
//! names, so they must not say which tenants exist.
//!
//! Known gap: a role may change its own password (`ALTER ROLE CURRENT_USER PASSWORD ...`); on
//! a password-authenticated cluster a tenant can so lock only itself out.

use tokio_postgres::Client;

/// Names for a managed database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedNames {
    /// The PostgreSQL database.
    pub dbname: String,
    /// The tenant's role.
    pub role: String,
}

/// Prefix of managed database names.
const DB_PREFIX: &str = "pf_d_";
/// Prefix of tenant role names.
const ROLE_PREFIX: &str = "pf_r_";

impl ManagedNames {
    /// Fresh random names, keeping the tenant's `role` if it has one already. Every tenant role
    /// can read `pg_database` and `pg_roles`, so the names say nothing of tenants: random, not
    /// derived from the tenant's name (a hash of a guessable name would give it away).
    pub fn generate(role: Option<&str>) -> ManagedNames {
        let random = || {
            let mut bytes = [0u8; 8];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
            hex::encode(bytes)
        };
        ManagedNames {
            dbname: format!("{DB_PREFIX}{}", random()),
            role: role.map_or_else(|| format!("{ROLE_PREFIX}{}", random()), str::to_string),
        }
    }

    /// Whether a name is one of [`ManagedNames::generate`]'s, rather than an older pubfn's,
    /// which carried the tenant's name.
    pub fn is_opaque(name: &str) -> bool {
        name.starts_with(DB_PREFIX) || name.starts_with(ROLE_PREFIX)
    }
}

/// What [`rename`] renames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renamed {
    /// A database: fails while anyone is connected to it (the caller tries again later).
    Database,
    /// A role: its SCRAM secret does not depend on its name, so its password survives.
    Role,
}

/// Renames a managed database or a tenant's role.
pub async fn rename(
    admin: &Client,
    what: Renamed,
    from: &str,
    to: &str,
) -> Result<(), tokio_postgres::Error> {
    let keyword = match what {
        Renamed::Database => "DATABASE",
        Renamed::Role => "ROLE",
    };
    admin
        .batch_execute(&format!(
            "ALTER {keyword} {} RENAME TO {}",
            quote_ident(from),
            quote_ident(to)
        ))
        .await
}

/// Quotes an identifier for SQL.
pub fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Takes `CONNECT` away from `PUBLIC` on the metadata database, so tenant roles cannot reach
/// schema `pubfn` (tenant databases get the same treatment as they are made).
pub async fn harden_metadata_database(admin: &Client) -> Result<(), tokio_postgres::Error> {
    let row = admin.query_one("SELECT current_database()", &[]).await?;
    let name: String = row.get(0);
    admin
        .batch_execute(&format!(
            "REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC",
            quote_ident(&name)
        ))
        .await
}

/// Creates the tenant's role (if new) and the database (if new), owned by the admin, with the
/// role owning its `public` schema. `admin` is a superuser (or CREATEROLE + CREATEDB)
/// connection; `connect_db` opens an admin connection to another database of the cluster.
pub async fn provision_managed<F, Fut>(
    admin: &Client,
    names: &ManagedNames,
    password: &str,
    connect_db: F,
) -> Result<(), tokio_postgres::Error>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<Client, tokio_postgres::Error>>,
{
    let role = quote_ident(&names.role);
    let db = quote_ident(&names.dbname);
    let role_exists = admin
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&names.role])
        .await?
        .is_some();
    if !role_exists {
        admin
            .batch_execute(&format!(
                "CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION \
                 NOBYPASSRLS CONNECTION LIMIT 50 PASSWORD {}",
                quote_literal(password)
            ))
            .await?;
    } else {
        admin
            .batch_execute(&format!(
                "ALTER ROLE {role} PASSWORD {}",
                quote_literal(password)
            ))
            .await?;
    }
    let db_exists = admin
        .query_opt(
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &[&names.dbname],
        )
        .await?
        .is_some();
    if !db_exists {
        admin
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await?;
    }
    admin
        .batch_execute(&format!(
            "REVOKE ALL ON DATABASE {db} FROM PUBLIC; {}",
            grant_warehouse(&names.dbname, &names.role)
        ))
        .await?;
    let inside = connect_db(names.dbname.clone()).await?;
    inside
        .batch_execute(&format!(
            "ALTER SCHEMA public OWNER TO {role}; REVOKE ALL ON SCHEMA public FROM PUBLIC;"
        ))
        .await?;
    Ok(())
}

/// What a tenant's role may do in its own database: connect, make temporary tables, and
/// create schemas (it is the tenant's warehouse).
pub fn grant_warehouse(dbname: &str, role: &str) -> String {
    format!(
        "GRANT CONNECT, TEMPORARY, CREATE ON DATABASE {} TO {}",
        quote_ident(dbname),
        quote_ident(role)
    )
}

/// Drops a managed database (after closing its connections).
pub async fn drop_managed(
    admin: &Client,
    names: &ManagedNames,
) -> Result<(), tokio_postgres::Error> {
    admin
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&names.dbname)
        ))
        .await
}

/// Drops a tenant's role once none of its databases remain.
pub async fn drop_role(admin: &Client, role: &str) -> Result<(), tokio_postgres::Error> {
    admin
        .batch_execute(&format!("DROP ROLE IF EXISTS {}", quote_ident(role)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_say_nothing_of_the_tenant() {
        let a = ManagedNames::generate(None);
        let b = ManagedNames::generate(None);
        assert_ne!(a.dbname, b.dbname);
        assert_ne!(a.role, b.role);
        assert_eq!(ManagedNames::generate(Some(&a.role)).role, a.role);
        assert!(a.dbname.len() <= 63 && a.role.len() <= 63);
        assert!(ManagedNames::is_opaque(&a.dbname) && ManagedNames::is_opaque(&a.role));
        assert!(!ManagedNames::is_opaque("t_acme_dw_2_0a1b2c3d"));
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
