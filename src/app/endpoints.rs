//! Endpoints: deployed after their script compiled in the tenant's own sandbox, versioned,
//! rolled back, deleted; their versions and handler logs read.

use super::{App, AppError, Caller};
use crate::control::ChangeKind;
use crate::control::model::{Endpoint, EndpointSpec, EndpointVersion, LogEntry};
use crate::control::route::RoutePattern;
use crate::control::schema::BodySchema;
use crate::sandbox::{CallError, CallErrorKind, Script};

/// Why `what` (a script, a module) failed its compile check: a syntax error keeps its position,
/// as the tenant's editor wants it; anything else says what happened.
pub(super) fn compile_error(what: &str, error: CallError) -> AppError {
    match error.kind {
        CallErrorKind::Syntax(report) => AppError::ScriptSyntax {
            message: report.message.clone(),
            line: report.line,
            column: report.column,
        },
        other => AppError::Invalid(format!("{what} cannot be compiled: {other}")),
    }
}

/// The methods an endpoint may answer.
pub const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

impl App {
    /// Compiles `spec.script` in the tenant's sandbox and, if it compiles, deploys it as a new
    /// version of endpoint `name`: a syntax error never deploys.
    pub async fn deploy(
        &self,
        caller: &Caller,
        tenant: &str,
        name: &str,
        mut spec: EndpointSpec,
    ) -> Result<EndpointVersion, AppError> {
        caller.may_manage(tenant)?;
        spec.method = spec.method.to_ascii_uppercase();
        if !METHODS.contains(&spec.method.as_str()) {
            return Err(AppError::Invalid(format!(
                "method {:?}: one of {}",
                spec.method,
                METHODS.join(", ")
            )));
        }
        spec.limits
            .validate(self.sandbox.max_memory_bytes())
            .map_err(AppError::Invalid)?;
        RoutePattern::parse(&spec.route)?;
        for (field, schema) in [
            ("request_schema", &spec.request_schema),
            ("response_schema", &spec.response_schema),
        ] {
            if let Some(schema) = schema {
                BodySchema::compile(field, schema)?;
            }
        }
        self.store.tenant(tenant).await?;
        // The version records the tenant's package set as it is now, and is checked with it.
        let package_set = self.store.current_package_set(tenant).await?;
        let packages = match &package_set {
            Some(hash) => Some(self.package_set(tenant, hash).await?),
            None => None,
        };
        let script = Script::new(spec.script.as_str());
        self.sandbox
            .check_script(tenant, packages, script, &spec.limits)
            .await
            .map_err(|e| compile_error("the script", e))?;
        let version = self
            .store
            .deploy(tenant, name, &spec, package_set.as_deref())
            .await?;
        self.changed(tenant, ChangeKind::Endpoints).await;
        Ok(version)
    }

    /// Serves an older version of an endpoint again.
    pub async fn rollback(
        &self,
        caller: &Caller,
        tenant: &str,
        name: &str,
        version: i32,
    ) -> Result<Endpoint, AppError> {
        caller.may_manage(tenant)?;
        let endpoint = self.store.rollback(tenant, name, version).await?;
        self.changed(tenant, ChangeKind::Endpoints).await;
        Ok(endpoint)
    }

    /// Deletes an endpoint and its versions.
    pub async fn delete_endpoint(
        &self,
        caller: &Caller,
        tenant: &str,
        name: &str,
    ) -> Result<(), AppError> {
        caller.may_manage(tenant)?;
        self.store.delete_endpoint(tenant, name).await?;
        self.changed(tenant, ChangeKind::Endpoints).await;
        Ok(())
    }

    /// The tenant's endpoints and the versions they serve (without scripts).
    pub async fn endpoints(
        &self,
        caller: &Caller,
        tenant: &str,
    ) -> Result<Vec<Endpoint>, AppError> {
        caller.may_manage(tenant)?;
        self.store.tenant(tenant).await?;
        Ok(self.store.endpoints(tenant, false).await?)
    }

    /// One endpoint, with its script.
    pub async fn endpoint(
        &self,
        caller: &Caller,
        tenant: &str,
        name: &str,
    ) -> Result<Endpoint, AppError> {
        caller.may_manage(tenant)?;
        Ok(self.store.endpoint(tenant, name).await?)
    }

    /// Every version of an endpoint.
    pub async fn versions(
        &self,
        caller: &Caller,
        tenant: &str,
        name: &str,
    ) -> Result<Vec<EndpointVersion>, AppError> {
        caller.may_manage(tenant)?;
        Ok(self.store.versions(tenant, name).await?)
    }

    /// An endpoint's handler logs, newest first: at most `limit`, after entry `since`.
    pub async fn logs(
        &self,
        caller: &Caller,
        tenant: &str,
        name: &str,
        limit: i64,
        since: Option<i64>,
    ) -> Result<Vec<LogEntry>, AppError> {
        caller.may_manage(tenant)?;
        self.store.endpoint(tenant, name).await?;
        Ok(self.store.logs(tenant, name, limit, since).await?)
    }
}
