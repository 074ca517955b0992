//! The embedded default's demo: tenant `demo` with a managed database `dw_2` holding
//! `salesforce.accounts`, and the seed's handler at `GET /demo/accounts`.

use std::net::SocketAddr;

use crate::auth::TokenRequest;
use crate::control::ControlError;
use crate::control::model::EndpointSpec;
use crate::http::AppState;
use crate::http::admin::issue_token;

/// The seed's example handler, unchanged.
pub const DEMO_SCRIPT: &str = r#"import pq


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

/// Creates what is missing of the demo, and prints a token, a curl command and where the
/// console is (`admin_addr`: the admin listener, or `addr` when there is none).
pub async fn seed_and_print(
    state: &AppState,
    addr: SocketAddr,
    admin_addr: SocketAddr,
) -> Result<(), String> {
    match state.store.create_tenant("demo", Default::default()).await {
        Ok(_) | Err(ControlError::Conflict(_)) => {}
        Err(e) => return Err(format!("seeding the demo tenant: {e}")),
    }
    match state.store.add_managed_database("demo", "dw_2").await {
        Ok(_) | Err(ControlError::Conflict(_)) => {}
        Err(e) => return Err(format!("creating the demo database: {e}")),
    }
    state
        .store
        .create_schema("demo", "dw_2", "salesforce")
        .await
        .map_err(|e| e.to_string())?;
    fill_sample(state).await?;
    let spec = EndpointSpec {
        method: "GET".into(),
        route: "/accounts".into(),
        script: DEMO_SCRIPT.into(),
        auth: Default::default(),
        isolation: Default::default(),
        limits: Default::default(),
    };
    let current = state.store.endpoint("demo", "accounts").await.ok();
    if current.as_ref().and_then(|e| e.script.as_deref()) != Some(DEMO_SCRIPT) {
        state
            .store
            .deploy("demo", "accounts", &spec)
            .await
            .map_err(|e| e.to_string())?;
    }
    state.registry.invalidate("demo");
    state
        .sandbox
        .prepare_tenant("demo")
        .await
        .map_err(|e| e.to_string())?;
    let request = TokenRequest {
        name: "demo".into(),
        ..Default::default()
    };
    let token = issue_token(state, "demo", request)
        .await
        .map_err(|e| e.to_string())?
        .token;
    println!("demo token (valid 24 h): {token}");
    let url = match &state.tenant_domain {
        Some(domain) => format!("http://demo.{domain}:{}/accounts", addr.port()),
        None => format!("http://{addr}/demo/accounts"),
    };
    println!("try: curl -H 'Authorization: Bearer {token}' {url}");
    println!("console: http://{admin_addr}/console/");
    Ok(())
}

/// Runs the sample SQL in `dw_2` as the demo tenant's role.
async fn fill_sample(state: &AppState) -> Result<(), String> {
    let target = state
        .store
        .database_targets("demo")
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|t| t.name == "dw_2")
        .ok_or("the demo database vanished")?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let client = state
        .pools
        .get(&target, deadline)
        .await
        .map_err(|e| e.to_string())?;
    client
        .batch_execute(SAMPLE_SQL)
        .await
        .map_err(|e| format!("filling {}: {e}", target.name))
}
