//! The embedded default's demo: tenant `demo` with `GET /demo/accounts`.

use std::net::SocketAddr;

use crate::auth::TokenRequest;
use crate::control::ControlError;
use crate::control::model::EndpointSpec;
use crate::http::AppState;
use crate::http::admin::issue_token;

/// The demo handler. `pq.dbconnect` arrives with the data issue; until then it serves a
/// static sample of the rows it will read.
pub const DEMO_SCRIPT: &str = r#"# GET /demo/accounts: the seed's example endpoint.
SAMPLE = [
    {"id": 1, "name": "Acme Corp", "industry": "Manufacturing", "country": "BE"},
    {"id": 2, "name": "Globex", "industry": "Energy", "country": "NL"},
    {"id": 3, "name": "Initech", "industry": "Software", "country": "US"},
]


def handler():
    limit = int(request.args.get("limit", len(SAMPLE)))
    return {"accounts": SAMPLE[:limit]}
"#;

/// Creates the demo tenant and endpoint if missing, and prints a token and a curl command.
pub async fn seed_and_print(state: &AppState, addr: SocketAddr) -> Result<(), String> {
    match state.store.create_tenant("demo", Default::default()).await {
        Ok(_) | Err(ControlError::Conflict(_)) => {}
        Err(e) => return Err(format!("seeding the demo tenant: {e}")),
    }
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
    println!("try: curl -H 'Authorization: Bearer {token}' http://{addr}/demo/accounts");
    Ok(())
}
