//! Running a draft: a script not deployed yet, on a sample request, in the tenant's sandbox
//! (the console's "Run", as Peliqan has it). It reaches the tenant's databases and secrets
//! like a deployed handler, has no endpoint state, and counts as a call of the tenant: its
//! concurrency cap, fair share and limit ceilings apply.

use std::collections::BTreeMap;
use std::time::Duration;

use super::invoke::{HandlerSpec, guest_request, route_segments};
use super::{App, AppError, Caller};
use crate::sandbox::{CallError, Isolation, Limits, Reply, Script};

/// What a draft did.
pub struct DraftOutcome {
    /// The handler's response, or why it has none (a syntax error included).
    pub outcome: Result<Reply, CallError>,
    /// Time it took.
    pub duration: Duration,
    /// The limits it ran under: those asked for, capped by the tenant's ceilings.
    pub limits: Limits,
}

/// The endpoint name drafts run under (never a deployed endpoint's: those cannot start with
/// `_`).
pub const DRAFT_ENDPOINT: &str = "_draft";

impl App {
    /// Runs `script` on `request` (its path is below the tenant) in `tenant`'s sandbox.
    pub async fn run_draft(
        &self,
        caller: &Caller,
        tenant: &str,
        script: String,
        limits: Limits,
        request: hyper::http::Request<Vec<u8>>,
    ) -> Result<DraftOutcome, AppError> {
        caller.may_manage(tenant)?;
        limits
            .validate(self.sandbox.max_memory_bytes())
            .map_err(AppError::Invalid)?;
        let view = self.registry.tenant(tenant).await?.ok_or_else(|| {
            crate::control::ControlError::NotFound(format!("no tenant {tenant:?}"))
        })?;
        let permit = self.try_permit(&view.name, &view.limits)?;
        let (parts, body) = request.into_parts();
        let route = route_segments(parts.uri.path())?;
        let request = guest_request(&parts, body, &route, BTreeMap::new());
        let spec = HandlerSpec {
            endpoint: DRAFT_ENDPOINT.into(),
            version: "draft".into(),
            // Compiled code is kept by the script's digest: no draft runs another's code.
            script: Script::new(script),
            isolation: Isolation::Strict,
            limits,
            with_state: false,
            db_session: None,
            // A draft tries the tenant's packages as they are now.
            packages: view.package_set.clone(),
        };
        let run = self.run_handler(&view, spec, request).await;
        drop(permit);
        Ok(DraftOutcome {
            outcome: run.outcome,
            duration: run.sandbox_time,
            limits: view.limits.cap(limits),
        })
    }
}
