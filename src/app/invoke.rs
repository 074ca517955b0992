//! Calling an endpoint: admission (tenant, route, method, token, concurrency), then the handler
//! in the tenant's sandbox with the capabilities it may reach, then its log entry. The same
//! handler sequence runs drafts ([`super::drafts`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;

use super::replay::CallRecord;
use super::replay::recording::Recorder;
use super::{App, AppError};
use crate::auth::jwt;
use crate::control::model::{AuthMode, LogEntry, Usage};
use crate::control::registry::{RouteEntry, RouteMatch, TenantView};
use crate::control::services::{EndpointStateStore, TenantConnectionSource, TenantSecretSource};
use crate::db::{DbSession, TenantDatabaseAccess};
use crate::egress::{EgressCall, TenantEgress};
use crate::host::GuestRequest;
use crate::sandbox::{
    Call, CallError, CallMeter, CallSeed, Capabilities, Isolation, Limits, Reply, Script,
};

mod request;
pub use request::{guest_request, route_segments};

/// A request let in to one of its tenant's endpoints: the route and method match, the
/// caller's token (if the endpoint wants one) is the tenant's and may call it, and one of the
/// tenant's in-flight permits is held until the call is done.
pub struct Admitted {
    /// The tenant.
    pub tenant: Arc<TenantView>,
    /// The endpoint version that will run.
    pub entry: RouteEntry,
    /// The route's parameters.
    pub params: BTreeMap<String, String>,
    /// The largest request body the tenant takes, in bytes.
    pub max_body_bytes: usize,
    /// The caller's verified claims (none for a public endpoint).
    claims: Option<jwt::Claims>,
    permit: OwnedSemaphorePermit,
}

/// One handler's call and what it cost.
pub struct HandlerRun {
    /// The handler's response, or why it has none.
    pub outcome: Result<Reply, CallError>,
    /// Time in the sandbox.
    pub sandbox_time: Duration,
    /// Time in database calls.
    pub db_time: Duration,
    /// Database calls made.
    pub db_round_trips: u64,
    /// The outbound HTTP requests it made, in order.
    pub egress: Vec<EgressCall>,
    /// CPU time and peak memory in the sandbox.
    pub meter: Arc<CallMeter>,
    /// What the call received, for a replay if it failed (none if it never ran).
    pub record: Option<super::replay::CallRecord>,
}

/// An endpoint's call, done; its log entry is written once the caller says what status the
/// client got ([`Invocation::record`]).
pub struct Invocation {
    /// The call.
    pub run: HandlerRun,
    log: LogEntry,
}

/// What a handler of `tenant` runs: its script, version, isolation and limits.
pub struct HandlerSpec {
    /// The endpoint's name (`_draft` for a draft).
    pub endpoint: String,
    /// Its version.
    pub version: String,
    /// The script.
    pub script: Script,
    /// Instance sharing.
    pub isolation: Isolation,
    /// Limits, before the tenant's caps.
    pub limits: Limits,
    /// Whether it has an endpoint's persistent state (a draft has none).
    pub with_state: bool,
    /// The caller's claims for its database transactions (`db_claims` endpoints).
    pub db_session: Option<DbSession>,
    /// The package set it runs with (hash).
    pub packages: Option<String>,
}

impl App {
    /// The tenant a request names, if it exists: `NoSuchEndpoint` otherwise, the same answer
    /// as for an unknown route, so unauthenticated callers cannot tell which tenants exist.
    pub async fn tenant_view(&self, tenant: &str) -> Result<Arc<TenantView>, AppError> {
        self.registry
            .tenant(tenant)
            .await?
            .ok_or(AppError::NoSuchEndpoint)
    }

    /// Lets a request in to `tenant`'s endpoint at `route`, or says why not.
    pub async fn admit(
        &self,
        tenant: Arc<TenantView>,
        method: &str,
        route: &[String],
        authorization: Option<&[u8]>,
    ) -> Result<Admitted, AppError> {
        let (entry, params) = match tenant.route(method, route) {
            RouteMatch::Found(entry, params) => (entry.clone(), params),
            RouteMatch::WrongMethod(allowed) => return Err(AppError::MethodNotAllowed(allowed)),
            RouteMatch::NotFound => return Err(AppError::NoSuchEndpoint),
        };
        let claims = if entry.auth == AuthMode::Jwt {
            let token = jwt::bearer_token(authorization)?;
            let claims = self.verify_data_token(&tenant, token).await?;
            jwt::may_call(&claims, &entry.endpoint)?;
            Some(claims)
        } else {
            None
        };
        let permit = self.try_permit(&tenant.name, &tenant.limits)?;
        Ok(Admitted {
            max_body_bytes: self.caps_in_force(&tenant.limits).max_body_bytes,
            tenant,
            entry,
            params,
            claims,
            permit,
        })
    }

    /// Runs an admitted request's handler on `request`.
    pub async fn invoke(
        &self,
        admitted: Admitted,
        request: GuestRequest,
        request_id: &str,
    ) -> Invocation {
        let Admitted {
            tenant,
            entry,
            claims,
            permit,
            ..
        } = admitted;
        let log = LogEntry {
            id: None,
            tenant: tenant.name.clone(),
            endpoint: entry.endpoint.clone(),
            version: entry.version,
            request_id: request_id.to_string(),
            method: request.method.clone(),
            path: request.path.clone(),
            status: 0,
            duration_ms: 0.0,
            output: String::new(),
            error: None,
            traceback: None,
            usage: None,
            created_at: None,
        };
        // A public endpoint's caller has no claims: `{}`, which no policy should match.
        let db_session = entry.db_claims.then(|| DbSession {
            claims: claims.as_ref().map_or_else(
                || "{}".to_string(),
                |c| serde_json::to_string(c).unwrap_or_else(|_| "{}".into()),
            ),
            endpoint: entry.endpoint.clone(),
        });
        let spec = HandlerSpec {
            endpoint: entry.endpoint,
            version: entry.version.to_string(),
            script: entry.script,
            isolation: entry.isolation,
            limits: entry.limits,
            with_state: true,
            db_session,
            packages: entry.packages,
        };
        let run = self.run_handler(&tenant, spec, request).await;
        drop(permit);
        Invocation { run, log }
    }

    /// The one handler sequence: the tenant's capabilities, the call in its sandbox under its
    /// caps, then the end of any transaction the handler left open (rolled back).
    pub(super) async fn run_handler(
        &self,
        tenant: &TenantView,
        spec: HandlerSpec,
        mut request: GuestRequest,
    ) -> HandlerRun {
        request.warehouse = tenant.warehouse.clone();
        let database = Arc::new(
            TenantDatabaseAccess::new(tenant.databases.clone(), self.pools.clone(), self.db_caps)
                .with_session(spec.db_session.as_ref()),
        );
        // Every capability's answers are written down as the call goes: only a failed call's
        // are kept (`replay`), but which calls fail is known only at the end.
        let recorder = Recorder::default();
        let limits = tenant.limits.cap(spec.limits);
        let egress = Arc::new(TenantEgress::new(
            self.egress.clone(),
            tenant.name.clone(),
            tenant.egress.clone(),
            Arc::new(TenantConnectionSource {
                store: self.store.clone(),
                tenant: tenant.name.clone(),
                sealed: tenant.connections.clone(),
            }),
            limits.egress_response_bytes,
        ));
        let capabilities = Capabilities {
            db: Some(recorder.db(database.clone())),
            egress: Some(recorder.egress(egress.clone())),
            secrets: Some(recorder.secrets(Arc::new(TenantSecretSource {
                store: self.store.clone(),
                tenant: tenant.name.clone(),
                sealed: tenant.secrets.clone(),
            }))),
            state: spec.with_state.then(|| {
                recorder.state(Arc::new(EndpointStateStore {
                    store: self.store.clone(),
                    tenant: tenant.name.clone(),
                    endpoint: spec.endpoint.clone(),
                }))
            }),
        };
        let packages = match &spec.packages {
            Some(hash) => match self.package_set(&tenant.name, hash).await {
                Ok(set) => Some(set),
                Err(e) => {
                    let error = CallError::host(format!(
                        "installing the package set: {}",
                        super::describe(&e)
                    ));
                    return HandlerRun {
                        outcome: Err(error),
                        sandbox_time: Default::default(),
                        db_time: Default::default(),
                        db_round_trips: 0,
                        egress: Default::default(),
                        meter: Default::default(),
                        record: None,
                    };
                }
            },
            None => None,
        };
        let meter = Arc::new(CallMeter::default());
        let request = Arc::new(request);
        let record = CallRecord {
            recorder,
            seed: CallSeed::fresh(),
            request: request.clone(),
            script: spec.script.source().clone(),
            limits,
            packages: packages.clone(),
        };
        let call = Call {
            tenant: tenant.name.clone(),
            packages,
            endpoint: spec.endpoint,
            version: spec.version,
            script: spec.script,
            isolation: spec.isolation,
            limits,
            request,
            capabilities,
            meter: meter.clone(),
            seed: record.seed,
        };
        let started = Instant::now();
        let outcome = self.sandbox.handle(call).await;
        let sandbox_time = started.elapsed();
        database.finish().await;
        HandlerRun {
            outcome,
            sandbox_time,
            db_time: database.time_spent(),
            db_round_trips: database.round_trips(),
            egress: egress.calls(),
            meter,
            record: Some(record),
        }
    }
}

impl HandlerRun {
    /// What the call used; the response bytes are those of the handler's body (none when it
    /// failed: a problem answer is pubfn's own).
    pub fn usage(&self) -> Usage {
        let response_bytes = self
            .outcome
            .as_ref()
            .map_or(0, |reply| reply.response.body.len());
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Usage {
            cpu_us: micros(self.meter.cpu()),
            peak_memory_bytes: self.meter.peak_memory_bytes(),
            db_us: micros(self.db_time),
            db_round_trips: self.db_round_trips,
            egress_us: micros(self.egress.iter().map(|call| call.duration).sum()),
            egress_bytes: self.egress.iter().map(|call| call.bytes as u64).sum(),
            response_bytes: response_bytes as u64,
        }
    }
}

impl Invocation {
    /// Writes the call's log entry and meters the call: `status` is what the client got,
    /// `notes` what the server changed of the response (each on a line after the handler's
    /// output). Gives the handler's outcome back, for its body, and what the call used.
    pub fn record(
        mut self,
        app: &App,
        status: u16,
        notes: &[String],
    ) -> (Result<Reply, CallError>, Usage) {
        let usage = self.run.usage();
        app.usage
            .record(&self.log.tenant, &self.log.endpoint, status, &usage);
        let log = &mut self.log;
        log.status = status;
        log.usage = Some(usage);
        log.duration_ms = self.run.sandbox_time.as_secs_f64() * 1e3;
        match &self.run.outcome {
            Ok(reply) => log.output = reply.output.clone(),
            Err(error) => {
                log.output = error.output.clone();
                log.error = Some(error.kind.to_string());
                log.traceback = error.kind.traceback().map(str::to_string);
            }
        }
        if let Some(record) = &self.run.record {
            app.keep_recording(record, log);
        }
        let egress_lines = self.run.egress.iter().map(EgressCall::log_line);
        for note in egress_lines.chain(notes.iter().cloned()) {
            if !log.output.is_empty() && !log.output.ends_with('\n') {
                log.output.push('\n');
            }
            log.output.push_str(&note);
            log.output.push('\n');
        }
        app.logs.record(self.log);
        (self.run.outcome, usage)
    }
}
