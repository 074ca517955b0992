//! The control plane's records, as the admin API shows them.

use serde::{Deserialize, Serialize};

use crate::sandbox::{Isolation, Limits};

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// A valid JWT of the endpoint's tenant is required.
    #[default]
    Jwt,
    /// Anyone; the handler does its own authentication.
    Public,
}

impl AuthMode {
    /// The database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Jwt => "jwt",
            AuthMode::Public => "public",
        }
    }

    /// Parses the database spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "jwt" => Some(AuthMode::Jwt),
            "public" => Some(AuthMode::Public),
            _ => None,
        }
    }
}

/// Isolation's database spelling.
pub fn isolation_str(isolation: Isolation) -> &'static str {
    match isolation {
        Isolation::Strict => "strict",
        Isolation::Warm => "warm",
    }
}

/// Parses isolation's database spelling.
pub fn parse_isolation(text: &str) -> Option<Isolation> {
    match text {
        "strict" => Some(Isolation::Strict),
        "warm" => Some(Isolation::Warm),
        _ => None,
    }
}

/// Per-tenant overrides of the front end's caps; unset fields take the server's defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantLimits {
    /// Requests in flight at once; more get 429.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<usize>,
    /// Largest request body, in bytes; more gets 413.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<usize>,
    /// The most CPU time an endpoint (or a draft) of the tenant may have, in milliseconds;
    /// larger limits are capped to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cpu_ms: Option<u64>,
    /// The most wall-clock time a call of the tenant may have, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wall_ms: Option<u64>,
    /// The most memory a call of the tenant may have, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_bytes: Option<usize>,
    /// The most its Python packages (modules and wheels) may take unpacked, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_package_bytes: Option<u64>,
}

impl TenantLimits {
    /// Largest `max_concurrency` (more would only defeat the cap).
    pub const MAX_CONCURRENCY: usize = 100_000;
    /// Largest `max_body_bytes`.
    pub const MAX_BODY_BYTES: usize = 1 << 30;
    /// Largest `max_package_bytes`: every node unpacks a tenant's packages to its disk.
    pub const MAX_PACKAGE_BYTES: u64 = 1 << 30;

    /// The tenant's package quota in bytes unpacked.
    pub fn package_quota(&self) -> u64 {
        self.max_package_bytes
            .unwrap_or(crate::packages::manifest::DEFAULT_QUOTA_BYTES)
    }

    /// Refuses caps that could not work: no request at all, or beyond what a node can hold.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(n) = self.max_concurrency
            && !(1..=Self::MAX_CONCURRENCY).contains(&n)
        {
            return Err(format!(
                "max_concurrency must be 1 to {}, not {n}",
                Self::MAX_CONCURRENCY
            ));
        }
        if let Some(n) = self.max_body_bytes
            && n > Self::MAX_BODY_BYTES
        {
            return Err(format!(
                "max_body_bytes must be at most {}, not {n}",
                Self::MAX_BODY_BYTES
            ));
        }
        for (name, value) in [
            ("max_cpu_ms", self.max_cpu_ms),
            ("max_wall_ms", self.max_wall_ms),
        ] {
            if let Some(n) = value
                && !(1..=Limits::MAX_TIME_MS).contains(&n)
            {
                return Err(format!(
                    "{name} must be 1 to {}, not {n}",
                    Limits::MAX_TIME_MS
                ));
            }
        }
        if let Some(n) = self.max_package_bytes
            && n > Self::MAX_PACKAGE_BYTES
        {
            return Err(format!(
                "max_package_bytes must be at most {}, not {n}",
                Self::MAX_PACKAGE_BYTES
            ));
        }
        if let Some(n) = self.max_memory_bytes
            && n < Limits::MIN_MEMORY_BYTES
        {
            return Err(format!(
                "max_memory_bytes must be at least {}, not {n}",
                Limits::MIN_MEMORY_BYTES
            ));
        }
        Ok(())
    }

    /// `limits` within what the operator allows a call of this tenant.
    pub fn cap(&self, limits: Limits) -> Limits {
        Limits {
            cpu_ms: self
                .max_cpu_ms
                .map_or(limits.cpu_ms, |max| limits.cpu_ms.min(max)),
            wall_ms: self
                .max_wall_ms
                .map_or(limits.wall_ms, |max| limits.wall_ms.min(max)),
            memory_bytes: self
                .max_memory_bytes
                .map_or(limits.memory_bytes, |max| limits.memory_bytes.min(max)),
            ..limits
        }
    }
}

/// A tenant (its JWT secret never leaves the control plane).
#[derive(Debug, Clone, Serialize)]
pub struct Tenant {
    /// Lower-case name, also the first path segment of its endpoints.
    pub name: String,
    /// Its caps (overrides of the server's defaults).
    pub limits: TenantLimits,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

/// What a deploy asks for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSpec {
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// Route below the tenant, e.g. `/accounts/{id}`.
    pub route: String,
    /// The handler's source.
    pub script: String,
    /// Who may call it.
    #[serde(default)]
    pub auth: AuthMode,
    /// Instance sharing.
    #[serde(default)]
    pub isolation: Isolation,
    /// Limits; unset fields take the defaults.
    #[serde(default, deserialize_with = "object")]
    pub limits: Limits,
    /// Run its database calls with the caller's verified claims in `request.jwt.claims` (and
    /// the endpoint's name in `request.endpoint`), for row-level security policies.
    #[serde(default)]
    pub db_claims: bool,
    /// A JSON Schema the request body must match (checked before the handler runs).
    #[serde(default)]
    pub request_schema: Option<serde_json::Value>,
    /// A JSON Schema of the response body, for the tenant's OpenAPI document.
    #[serde(default)]
    pub response_schema: Option<serde_json::Value>,
}

/// One version of an endpoint: its script and settings as deployed.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointVersion {
    /// 1, 2, ... in deploy order.
    pub version: i32,
    /// HTTP method.
    pub method: String,
    /// Route below the tenant.
    pub route: String,
    /// Who may call it.
    pub auth: AuthMode,
    /// Instance sharing.
    pub isolation: Isolation,
    /// Limits.
    pub limits: Limits,
    /// Whether its database calls carry the caller's claims.
    pub db_claims: bool,
    /// SHA-256 of the script, hex.
    pub script_sha256: String,
    /// The package set it was deployed with (its hash), if the tenant had packages: it keeps
    /// it until it is replaced, and a rollback to it brings it back.
    pub package_set: Option<String>,
    /// The JSON Schema of its request body, if it declared one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_schema: Option<serde_json::Value>,
    /// The JSON Schema of its response body, if it declared one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_schema: Option<serde_json::Value>,
    /// When it was deployed (RFC 3339).
    pub deployed_at: String,
}

/// An endpoint and the version it serves.
#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    /// Tenant name.
    pub tenant: String,
    /// Endpoint name.
    pub name: String,
    /// The version being served.
    pub current: EndpointVersion,
    /// Its script (omitted from lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
}

/// A token's record; its value is shown once, at creation, and never stored.
#[derive(Debug, Clone, Serialize)]
pub struct TokenRecord {
    /// The token id (`jti` claim).
    pub jti: String,
    /// A name for people.
    pub name: String,
    /// Whether it may call the tenant's admin API.
    pub admin: bool,
    /// The endpoints it is limited to; `None` means all.
    pub endpoints: Option<Vec<String>>,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Expiry (RFC 3339), if any.
    pub expires_at: Option<String>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<String>,
}

/// One handler call, as the tenant's logs keep it.
#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    /// Cursor for `since=` (set once stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// Tenant name.
    pub tenant: String,
    /// Endpoint name.
    pub endpoint: String,
    /// Endpoint version that ran.
    pub version: i32,
    /// The `x-request-id` the client got.
    pub request_id: String,
    /// HTTP method.
    pub method: String,
    /// Path below the tenant.
    pub path: String,
    /// Status sent to the client.
    pub status: u16,
    /// Time in the sandbox, in milliseconds.
    pub duration_ms: f64,
    /// Captured stdout and stderr.
    pub output: String,
    /// Why the call failed, if it did.
    pub error: Option<String>,
    /// The script's traceback, if it raised.
    pub traceback: Option<String>,
    /// What the call used (absent in entries written before metering).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// When it ran (RFC 3339; set once stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

/// What one call used: the figures a tenant is metered (and may be billed) by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// CPU time in the sandbox (guest code holding a turn at a core), in microseconds.
    pub cpu_us: u64,
    /// The instance's peak linear memory, in bytes.
    pub peak_memory_bytes: u64,
    /// Time in database calls, in microseconds.
    pub db_us: u64,
    /// Database calls made.
    pub db_round_trips: u64,
    /// Time waiting on outbound HTTP, in microseconds.
    pub egress_us: u64,
    /// Outbound HTTP response body bytes received.
    pub egress_bytes: u64,
    /// Response body bytes sent to the client.
    pub response_bytes: u64,
}

/// Deserializes a struct from a JSON object only: serde's derive would also take an array of
/// its fields' values, which no client means.
pub fn object<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let map = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
    T::deserialize(serde_json::Value::Object(map)).map_err(serde::de::Error::custom)
}
