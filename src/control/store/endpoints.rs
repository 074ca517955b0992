//! Endpoints and their versions.

use sha2::{Digest, Sha256};
use tokio_postgres::Row;

use super::{Store, notify};
use crate::control::ControlError;
use crate::control::change::ChangeKind;
use crate::control::model::{
    AuthMode, Endpoint, EndpointSpec, EndpointVersion, isolation_str, parse_isolation,
};

impl Store {
    /// Stores a new version of an endpoint (creating the endpoint on first deploy) and makes it
    /// current; returns that version. The script must already have passed the sandbox's check.
    pub async fn deploy(
        &self,
        tenant: &str,
        name: &str,
        spec: &EndpointSpec,
        package_set: Option<&str>,
    ) -> Result<EndpointVersion, ControlError> {
        let sha = hex::encode(Sha256::digest(spec.script.as_bytes()));
        let limits = serde_json::to_value(spec.limits).expect("limits serialise");
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // One deploy per tenant at a time, so route conflicts are checked against settled state.
        tx.execute(
            "SELECT 1 FROM pubfn.tenants WHERE name = $1 FOR UPDATE",
            &[&tenant],
        )
        .await?;
        let clash = tx
            .query_opt(
                "SELECT e.name FROM pubfn.endpoints e JOIN pubfn.endpoint_versions v
                   ON v.tenant = e.tenant AND v.endpoint = e.name AND v.version = e.current_version
                 WHERE e.tenant = $1 AND e.name <> $2 AND v.method = $3 AND v.route = $4
                 LIMIT 1",
                &[&tenant, &name, &spec.method, &spec.route],
            )
            .await?;
        if let Some(row) = clash {
            let other: String = row.get(0);
            return Err(ControlError::Conflict(format!(
                "{} {} is already served by endpoint {other:?}",
                spec.method, spec.route
            )));
        }
        tx.execute(
            "INSERT INTO pubfn.scripts (tenant, sha256, source) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&tenant, &sha, &spec.script],
        )
        .await?;
        let version: i32 = tx
            .query_one(
                "INSERT INTO pubfn.endpoints (tenant, name, current_version) VALUES ($1, $2, 1)
                 ON CONFLICT (tenant, name) DO UPDATE SET
                   current_version = (SELECT max(version) + 1 FROM pubfn.endpoint_versions
                                      WHERE tenant = $1 AND endpoint = $2),
                   updated_at = now()
                 RETURNING current_version",
                &[&tenant, &name],
            )
            .await?
            .get(0);
        let row = tx
            .query_one(
                concat!(
                    "INSERT INTO pubfn.endpoint_versions
                       (tenant, endpoint, version, method, route, auth, isolation, limits, script,
                        db_claims, package_set, request_schema, response_schema)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                     RETURNING version, method, route, auth, isolation, limits, script, db_claims,
                       package_set, request_schema, response_schema, ",
                    ts!("deployed_at" AS "deployed_at")
                ),
                &[
                    &tenant,
                    &name,
                    &version,
                    &spec.method,
                    &spec.route,
                    &spec.auth.as_str(),
                    &isolation_str(spec.isolation),
                    &limits,
                    &sha,
                    &spec.db_claims,
                    &package_set,
                    &spec.request_schema,
                    &spec.response_schema,
                ],
            )
            .await?;
        notify(&tx, tenant, ChangeKind::Endpoints).await?;
        tx.commit().await?;
        version_from_row(&row)
    }

    /// The tenant's endpoints with their current versions (and scripts, if `with_scripts`).
    pub async fn endpoints(
        &self,
        tenant: &str,
        with_scripts: bool,
    ) -> Result<Vec<Endpoint>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(ENDPOINTS_QUERY, &[&tenant, &None::<String>])
            .await?;
        rows.iter()
            .map(|row| endpoint_from_row(row, with_scripts))
            .collect()
    }

    /// One endpoint with its script.
    pub async fn endpoint(&self, tenant: &str, name: &str) -> Result<Endpoint, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(ENDPOINTS_QUERY, &[&tenant, &Some(name)])
            .await?
            .ok_or_else(|| {
                ControlError::NotFound(format!("no endpoint {name:?} in tenant {tenant:?}"))
            })?;
        endpoint_from_row(&row, true)
    }

    /// Every version of an endpoint, oldest first.
    pub async fn versions(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Vec<EndpointVersion>, ControlError> {
        self.endpoint(tenant, name).await?;
        let rows = self
            .client()
            .await?
            .query(
                concat!(
                    "SELECT version, method, route, auth, isolation, limits, script, db_claims, package_set, request_schema, response_schema, ",
                    ts!("deployed_at" AS "deployed_at"),
                    " FROM pubfn.endpoint_versions WHERE tenant = $1 AND endpoint = $2 ORDER BY version"
                ),
                &[&tenant, &name],
            )
            .await?;
        rows.iter().map(version_from_row).collect()
    }

    /// Makes an older version current again.
    pub async fn rollback(
        &self,
        tenant: &str,
        name: &str,
        version: i32,
    ) -> Result<Endpoint, ControlError> {
        let client = self.client().await?;
        let updated = client
            .execute(
                "UPDATE pubfn.endpoints SET current_version = $3, updated_at = now()
                 WHERE tenant = $1 AND name = $2 AND EXISTS (SELECT 1 FROM pubfn.endpoint_versions
                   WHERE tenant = $1 AND endpoint = $2 AND version = $3)",
                &[&tenant, &name, &version],
            )
            .await?;
        if updated == 0 {
            return Err(ControlError::NotFound(format!(
                "endpoint {name:?} has no version {version}"
            )));
        }
        notify(&client, tenant, ChangeKind::Endpoints).await?;
        self.endpoint(tenant, name).await
    }

    /// Deletes an endpoint and its versions.
    pub async fn delete_endpoint(&self, tenant: &str, name: &str) -> Result<(), ControlError> {
        let client = self.client().await?;
        let deleted = client
            .execute(
                "DELETE FROM pubfn.endpoints WHERE tenant = $1 AND name = $2",
                &[&tenant, &name],
            )
            .await?;
        if deleted == 0 {
            return Err(ControlError::NotFound(format!(
                "no endpoint {name:?} in tenant {tenant:?}"
            )));
        }
        notify(&client, tenant, ChangeKind::Endpoints).await
    }
}

const ENDPOINTS_QUERY: &str = concat!(
    "SELECT e.tenant, e.name, v.version, v.method, v.route, v.auth, v.isolation, v.limits, v.script, v.db_claims, v.package_set, v.request_schema, v.response_schema, ",
    ts!("v.deployed_at" AS "deployed_at"),
    ", s.source
     FROM pubfn.endpoints e
     JOIN pubfn.endpoint_versions v ON v.tenant = e.tenant AND v.endpoint = e.name AND v.version = e.current_version
     JOIN pubfn.scripts s ON s.tenant = v.tenant AND s.sha256 = v.script
     WHERE e.tenant = $1 AND ($2::text IS NULL OR e.name = $2)
     ORDER BY e.name"
);

fn version_from_row(row: &Row) -> Result<EndpointVersion, ControlError> {
    let unknown = |what: &'static str, text: &str| {
        ControlError::corrupt(what, format!("{text:?} in pubfn.endpoint_versions"))
    };
    Ok(EndpointVersion {
        version: row.get("version"),
        method: row.get("method"),
        route: row.get("route"),
        auth: AuthMode::parse(row.get("auth"))
            .ok_or_else(|| unknown("endpoint auth", row.get("auth")))?,
        isolation: parse_isolation(row.get("isolation"))
            .ok_or_else(|| unknown("endpoint isolation", row.get("isolation")))?,
        limits: serde_json::from_value(row.get("limits"))
            .map_err(|e| ControlError::corrupt("endpoint limits", e))?,
        db_claims: row.get("db_claims"),
        script_sha256: row.get("script"),
        package_set: row.get("package_set"),
        request_schema: row.get("request_schema"),
        response_schema: row.get("response_schema"),
        deployed_at: row.get("deployed_at"),
    })
}

fn endpoint_from_row(row: &Row, with_script: bool) -> Result<Endpoint, ControlError> {
    Ok(Endpoint {
        tenant: row.get("tenant"),
        name: row.get("name"),
        current: version_from_row(row)?,
        script: with_script.then(|| row.get("source")),
    })
}
