//! Managed tenant databases: a PostgreSQL database per (tenant, name), reached as a role made
//! for the tenant that owns nothing but its database's `public` schema and schemas made for it.
//!
//! The role is `LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS`,
//! belongs to no predefined role (so no `pg_read_server_files`, `pg_execute_server_program`,
//! ...), gets `CONNECT` on its own databases only (`PUBLIC` loses `CONNECT` everywhere), and
//! never `CREATE` on a database, so it cannot create extensions.
//!
//! Known gap: a role may change its own password (`ALTER ROLE CURRENT_USER PASSWORD ...`); on
//! a password-authenticated cluster a tenant can so lock only itself out.

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

/// Names for a managed database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedNames {
    /// The PostgreSQL database.
    pub dbname: String,
    /// The tenant's role.
    pub role: String,
}

/// Derives names that fit PostgreSQL's 63-byte identifiers and cannot collide across tenants.
pub fn managed_names(tenant: &str, name: &str) -> ManagedNames {
    let short = |text: &str| text.chars().take(24).collect::<String>().replace('-', "_");
    let tag = |text: &str| hex::encode(&Sha256::digest(text.as_bytes())[..4]);
    ManagedNames {
        dbname: format!(
            "t_{}_{}_{}",
            short(tenant),
            short(name),
            tag(&format!("{tenant}/{name}"))
        ),
        role: format!("t_{}_{}", short(tenant), tag(tenant)),
    }
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
            "REVOKE ALL ON DATABASE {db} FROM PUBLIC; GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {role}"
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
    fn names_fit_and_differ() {
        let a = managed_names("acme", "dw_2");
        let b = managed_names("acme-corp", "dw_2");
        assert_ne!(a.dbname, b.dbname);
        assert_ne!(a.role, b.role);
        let long = managed_names(&"x".repeat(63), &"y".repeat(31));
        assert!(long.dbname.len() <= 63 && long.role.len() <= 63);
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
