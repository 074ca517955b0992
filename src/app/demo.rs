//! The embedded default's demo: tenant `demo` with a managed database `dw_2` holding
//! `salesforce.accounts`, and the seed's handler at `GET /demo/accounts`.

use std::sync::Arc;

use super::tokens::IssuedToken;
use super::{App, AppError, Caller};
use crate::auth::TokenRequest;
use crate::control::ControlError;
use crate::control::model::EndpointSpec;

/// The seed's example handler, unchanged: `pq` is there without an import, as in Peliqan.
pub const DEMO_SCRIPT: &str = r#"
def handler():
    dbconn = pq.dbconnect('dw_2')
    return dbconn.fetch('dw_2', 'salesforce', 'accounts')
"#;

/// Sample rows, created as the tenant's own role so the tenant owns them.
const SAMPLE_SQL: &str = "
CREATE TABLE IF NOT EXISTS salesforce.accounts (
    id integer PRIMARY KEY, name text NOT NULL, industry text, country text,
    annual_revenue numeric(14, 2), created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO salesforce.accounts (id, name, industry, country, annual_revenue) VALUES
    (1, 'Acme Corp', 'Manufacturing', 'BE', 12500000.00),
    (2, 'Globex', 'Energy', 'NL', 8300000.50),
    (3, 'Initech', 'Software', 'US', 2100000.00)
ON CONFLICT (id) DO NOTHING;";

impl App {
    /// Creates what is missing of the demo tenant, its database, table and endpoint, and
    /// issues a token for it (valid 24 hours).
    pub async fn seed_demo(self: &Arc<Self>) -> Result<IssuedToken, AppError> {
        let operator = Caller::Operator;
        let exists = |e: &AppError| matches!(e, AppError::Control(ControlError::Conflict(_)));
        match self
            .create_tenant(&operator, "demo", Default::default())
            .await
        {
            Err(e) if !exists(&e) => return Err(e),
            _ => {}
        }
        match self
            .add_database(&operator, "demo", "dw_2", None, None)
            .await
        {
            Err(e) if !exists(&e) => return Err(e),
            _ => {}
        }
        self.store
            .create_schema("demo", "dw_2", "salesforce")
            .await?;
        self.fill_sample().await?;
        let current = self.store.endpoint("demo", "accounts").await.ok();
        if current.as_ref().and_then(|e| e.script.as_deref()) != Some(DEMO_SCRIPT) {
            let spec = EndpointSpec {
                method: "GET".into(),
                route: "/accounts".into(),
                script: DEMO_SCRIPT.into(),
                auth: Default::default(),
                isolation: Default::default(),
                limits: Default::default(),
                db_claims: false,
                request_schema: None,
                response_schema: None,
            };
            self.deploy(&operator, "demo", "accounts", spec).await?;
        }
        self.sandbox
            .prepare_tenant("demo")
            .await
            .map_err(|e| AppError::host("building the demo's snapshot", e))?;
        let request = TokenRequest {
            name: "demo".into(),
            ..Default::default()
        };
        self.issue_token(&operator, "demo", request).await
    }

    /// Runs the sample SQL in `dw_2` as the demo tenant's role.
    async fn fill_sample(&self) -> Result<(), AppError> {
        let target = self
            .store
            .database_targets("demo")
            .await?
            .into_iter()
            .find(|t| t.name == "dw_2")
            .ok_or_else(|| AppError::host("finding the demo database", "it vanished"))?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let client = self
            .pools
            .get(&target, deadline)
            .await
            .map_err(|e| AppError::host("reaching the demo database", e))?;
        client
            .batch_execute(SAMPLE_SQL)
            .await
            .map_err(|e| AppError::host("filling the demo database", e))
    }
}
