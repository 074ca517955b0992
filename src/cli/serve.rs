//! `pubfn serve`: the HTTP server, on a given PostgreSQL or on a private embedded one.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use crate::app::{App, AppParts, TenantCaps, describe};
use crate::config;
use crate::control::SealingKey;
use crate::control::{LogRetention, LogSink, Registry, Store};
use crate::db::{LocalCluster, PoolSettings, ResultCaps};
use crate::egress::{EgressClients, EgressSettings};
use crate::http::{HttpState, ServerLimits, Surface};
use crate::sandbox::engine;

/// Arguments of `pubfn serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Serve the admin API, the web console and /metrics on this address only (their own
    /// origin), and only tenants' endpoints on --listen. Recommended: without it, the console
    /// shares its origin with tenants' pages, kept apart by response headers alone.
    #[arg(long)]
    pub admin_listen: Option<SocketAddr>,
    /// Serve each tenant's endpoints at https://{tenant}.DOMAIN/{route} (an origin of its own;
    /// point a wildcard DNS name and certificate at the load balancer) instead of
    /// /{tenant}/{route}.
    #[arg(long, value_parser = parse_domain)]
    pub tenant_domain: Option<String>,
    /// The Content-Security-Policy added to every handler's response: `sandbox` runs a page a
    /// tenant serves in an opaque origin, away from other tenants' and the console's storage,
    /// cookies and Service Workers. An empty value adds none.
    #[arg(long, default_value = "sandbox")]
    pub tenant_csp: String,
    /// A proxy (the load balancer) whose `X-Forwarded-For` names the client handlers see as
    /// `request.remote_addr`; repeatable. Without it, the peer's address.
    #[arg(long = "trusted-proxy")]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// PostgreSQL for the metadata; without it, a private cluster under --data-dir is started.
    #[arg(long, env = "PUBFN_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Where the embedded default keeps its PostgreSQL cluster.
    #[arg(long, default_value = ".pubfn")]
    pub data_dir: PathBuf,
    /// The runtime directory (default: $PUBFN_RUNTIME, else the last one built).
    #[arg(long)]
    pub runtime: Option<PathBuf>,
    /// Requests one tenant may have in flight; more get 429.
    #[arg(long, default_value_t = TenantCaps::default().max_concurrency)]
    pub tenant_max_concurrency: usize,
    /// Time a client has to send a request's headers, in milliseconds.
    #[arg(long, default_value_t = ServerLimits::default().header_timeout.as_millis() as u64)]
    pub header_timeout_ms: u64,
    /// Client connections open at once; more wait in the kernel's accept queue (idle ones are
    /// closed after the header timeout, so the queue moves).
    #[arg(long, default_value_t = ServerLimits::default().max_connections)]
    pub max_connections: usize,
    /// Handlers' log entries older than this are pruned, in seconds.
    #[arg(long, default_value_t = LogRetention::default().max_age_secs)]
    pub log_max_age_secs: i64,
    /// Handlers' log entries kept per tenant at most.
    #[arg(long, default_value_t = LogRetention::default().max_per_tenant)]
    pub log_max_per_tenant: i64,
    /// Routine handler log entries (status below 400, no output, no error) written per tenant
    /// and second at most (0: none); the rest of them are skipped. Entries with output or an
    /// error are always written.
    #[arg(long, default_value_t = LogRetention::default().routine_per_second)]
    pub log_routine_per_second: u32,
    /// How often old log entries are pruned, in seconds.
    #[arg(long, default_value_t = LogRetention::default().prune_every.as_secs())]
    pub log_prune_interval_secs: u64,
    /// Largest request body for a tenant's endpoint, in bytes; more gets 413.
    #[arg(long, default_value_t = TenantCaps::default().max_body_bytes)]
    pub tenant_max_body_bytes: usize,
    /// The key that seals tenants' secrets and database credentials at rest (64 hex digits);
    /// created if missing. Every node of a deployment needs the same one.
    /// [default: DATA_DIR/sealing.key]
    #[arg(long, env = "PUBFN_SEALING_KEY_FILE")]
    pub sealing_key_file: Option<PathBuf>,
    /// The bearer token Prometheus sends to `/metrics` (default: the admin key).
    #[arg(long, env = "PUBFN_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Connections to one tenant database at most (per node).
    #[arg(long, default_value_t = PoolSettings::default().max_size)]
    pub db_pool_size: usize,
    /// Rows one database call may return at most; more raise pq.DatabaseError.
    #[arg(long, default_value_t = ResultCaps::default().max_rows)]
    pub db_max_rows: usize,
    /// Bytes of JSON one database call may return at most.
    #[arg(long, default_value_t = ResultCaps::default().max_bytes)]
    pub db_max_result_bytes: usize,
    /// Memory each instance slot keeps when its instance ends, in MiB: the next instance
    /// in that slot starts without faulting those pages in again. Bounds the copy a strict
    /// request pays too.
    #[arg(long, default_value_t = (engine::DEFAULT_KEEP_RESIDENT_BYTES >> 20) as u32)]
    pub sandbox_keep_resident_mib: u32,
    /// Unused instance slots that keep their memory for reuse. Instance memory stays below
    /// about (peak concurrent instances + this) × --sandbox-keep-resident-mib.
    #[arg(long, default_value_t = engine::DEFAULT_IDLE_SLOTS)]
    pub sandbox_idle_slots: u32,
    /// Extra trusted root certificates (PEM) for handlers' outbound HTTPS, beside the
    /// system's: a private CA.
    #[arg(long)]
    pub egress_ca_file: Option<PathBuf>,
    /// Lets allow-listed destinations resolve to loopback (127.0.0.0/8, ::1). Only for tests
    /// and local development: it opens this machine's own services to tenants' handlers.
    #[arg(long)]
    pub egress_allow_loopback: bool,
    /// Outbound HTTP requests one tenant's handlers may have in flight; more wait.
    #[arg(long, default_value_t = EgressSettings::default().max_in_flight_per_tenant)]
    pub egress_max_in_flight: usize,
    /// The most resident memory the server should hold (`8GiB`, `512MiB`, or bytes): above
    /// it, idle tenants' snapshot modules, warm instances and database pools are released,
    /// least recently used first. Default: half of the machine's memory.
    #[arg(long, value_parser = crate::app::budget::parse_size)]
    pub sandbox_memory_budget: Option<u64>,
    /// Guests running at once (CPU turns), default: the cores this process may use (its
    /// affinity mask, so `taskset` narrows it too).
    #[arg(long)]
    pub sandbox_threads: Option<usize>,
    /// On SIGTERM or SIGINT: `/readyz` answers 503 at once, no new connection is accepted, and
    /// requests in flight get this long to finish, in seconds. Keep it below the
    /// orchestrator's grace period.
    #[arg(long, default_value_t = ServerLimits::default().drain_timeout.as_secs())]
    pub drain_timeout_secs: u64,
}

/// A host name suffix: lower-case DNS labels.
fn parse_domain(text: &str) -> Result<String, String> {
    let domain = text.trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if !domain.is_empty() && domain.split('.').all(label_ok) {
        Ok(domain)
    } else {
        Err(format!("{text:?} is not a DNS name"))
    }
}

/// Runs the server until SIGTERM or SIGINT.
pub async fn run(args: ServeArgs) -> ExitCode {
    match serve(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("pubfn serve: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    // The cluster's files, the sealing key, snapshots and logs are nobody else's to read.
    crate::private_fs::restrict_new_files();
    if args.database_url.is_none() || args.sealing_key_file.is_none() {
        crate::private_fs::ensure_private_dir(&args.data_dir)
            .map_err(|e| format!("--data-dir {}: {e}", args.data_dir.display()))?;
    }
    let mut cluster = None;
    let (pg_config, embedded) = match &args.database_url {
        Some(url) => (
            url.parse::<tokio_postgres::Config>()
                .map_err(|e| format!("--database-url: {e}"))?,
            false,
        ),
        None => {
            let dir = args.data_dir.join("postgres");
            let started = tokio::task::spawn_blocking(move || LocalCluster::start(&dir))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| describe(&e))?;
            let config = ensure_database(&started, "pubfn").await?;
            cluster = Some(started);
            (config, true)
        }
    };
    let pg_config_for_tenants = pg_config.clone();
    let key_file = args
        .sealing_key_file
        .clone()
        .unwrap_or_else(|| args.data_dir.join("sealing.key"));
    let key = SealingKey::load_or_create(&key_file).map_err(|e| format!("sealing key: {e}"))?;
    let store = Store::connect(pg_config.clone(), 16, key).map_err(|e| describe(&e))?;
    store
        .migrate()
        .await
        .map_err(|e| format!("migrating the metadata schema: {}", describe(&e)))?;
    let registry = Registry::new(store.clone());
    let sandbox = super::open_sandbox(args.runtime.clone(), |config| {
        config.keep_resident_bytes = (args.sandbox_keep_resident_mib as usize) << 20;
        config.idle_slots = args.sandbox_idle_slots;
        if let Some(threads) = args.sandbox_threads {
            config.cpu_turns = threads.max(1);
        }
    })?;
    let (admin_key, generated) = match config::admin_key() {
        Some(key) => (key, false),
        None => (config::generate_secret(), true),
    };
    let retention = LogRetention {
        max_age_secs: args.log_max_age_secs,
        max_per_tenant: args.log_max_per_tenant,
        prune_every: std::time::Duration::from_secs(args.log_prune_interval_secs.max(1)),
        routine_per_second: args.log_routine_per_second,
    };
    if args.egress_allow_loopback {
        tracing::warn!(
            "--egress-allow-loopback: tenants' handlers may reach services on this machine \
             through allow-listed names; never use it in production"
        );
    }
    let egress = EgressClients::new(EgressSettings {
        allow_loopback: args.egress_allow_loopback,
        ca_file: args.egress_ca_file.clone(),
        max_in_flight_per_tenant: args.egress_max_in_flight.max(1),
    })?;
    let logs = LogSink::start(store.clone(), retention);
    let usage = crate::control::usage::UsageLedger::start(store.clone());
    let replays = crate::control::replays::ReplayKeeper::start(
        store.clone(),
        crate::control::replays::ReplayRetention::default(),
    );
    let app = App::new(AppParts {
        egress,
        logs,
        usage,
        replays,
        pools: Arc::new(crate::db::TenantPools::new(
            pg_config_for_tenants,
            PoolSettings {
                max_size: args.db_pool_size.max(1),
                ..PoolSettings::default()
            },
        )),
        db_caps: ResultCaps {
            max_rows: args.db_max_rows,
            max_bytes: args.db_max_result_bytes,
        },
        store,
        registry,
        sandbox: Arc::new(sandbox),
        admin_key,
        memory_budget_bytes: args
            .sandbox_memory_budget
            .unwrap_or_else(crate::app::budget::default_budget_bytes),
        default_caps: TenantCaps {
            max_concurrency: args.tenant_max_concurrency,
            max_body_bytes: args.tenant_max_body_bytes,
        },
    });
    // Every node's changes, this one's included, go through the app's one change handler.
    let follower = tokio::spawn(app.clone().follow_changes(pg_config));
    let budget_keeper = tokio::spawn(app.clone().keep_to_budget());
    let state = Arc::new(HttpState {
        app: app.clone(),
        server_limits: ServerLimits {
            header_timeout: std::time::Duration::from_millis(args.header_timeout_ms),
            max_connections: args.max_connections.max(1),
            drain_timeout: std::time::Duration::from_secs(args.drain_timeout_secs),
            ..ServerLimits::default()
        },
        metrics: Default::default(),
        metrics_token: args.metrics_token.clone().filter(|t| !t.is_empty()),
        tenant_domain: args.tenant_domain.clone(),
        tenant_csp: tenant_csp(&args.tenant_csp)?,
        trusted_proxies: args.trusted_proxies.clone(),
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("binding {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let admin_listener = match args.admin_listen {
        Some(admin) => Some(
            tokio::net::TcpListener::bind(admin)
                .await
                .map_err(|e| format!("binding {admin}: {e}"))?,
        ),
        None => {
            tracing::info!(
                "the admin API and console share an origin with tenants' endpoints; \
                 give them their own with --admin-listen"
            );
            None
        }
    };
    let admin_addr = match &admin_listener {
        Some(listener) => listener.local_addr().map_err(|e| e.to_string())?,
        None => addr,
    };
    if generated {
        println!(
            "admin key (shown once; set PUBFN_ADMIN_KEY to choose one): {}",
            app.admin_key()
        );
    }
    if embedded {
        let demo_url = match &args.tenant_domain {
            Some(domain) => format!("http://demo.{domain}:{}/accounts", addr.port()),
            None => format!("http://{addr}/demo/accounts"),
        };
        let token = app
            .seed_demo()
            .await
            .map_err(|e| format!("seeding the demo: {}", describe(&e)))?
            .token;
        println!("demo token (valid 24 h): {token}");
        println!("try: curl -H 'Authorization: Bearer {token}' {demo_url}");
        println!("console: http://{admin_addr}/console/");
    }
    // Both listeners stop at the same signal, and each drains its own connections.
    // Readiness turns false first, so that load balancers stop sending new requests.
    let draining = app.clone();
    let shutdown = futures_util::FutureExt::shared(Box::pin(async move {
        shutdown_signal().await;
        draining.start_draining();
    }));
    let (data_surface, admin_server) = match admin_listener {
        Some(admin) => {
            println!("pubfn admin listening on http://{admin_addr}");
            let server = crate::http::serve(admin, state.clone(), Surface::Admin, shutdown.clone());
            (Surface::Data, Some(server))
        }
        None => (Surface::All, None),
    };
    println!("pubfn listening on http://{addr}");
    let data_server = crate::http::serve(listener, state, data_surface, shutdown);
    match admin_server {
        Some(admin_server) => {
            let (data, admin) = tokio::join!(data_server, admin_server);
            data.and(admin).map_err(|e| e.to_string())?;
        }
        None => data_server.await.map_err(|e| e.to_string())?,
    }
    // The last calls' usage, before the metadata database may go away.
    if let Err(e) = app.flush_usage().await {
        tracing::warn!(
            "writing the last usage totals: {}",
            crate::app::describe(&e)
        );
    }
    // Stop listening for changes before the embedded cluster goes away under it.
    follower.abort();
    budget_keeper.abort();
    if let Some(mut cluster) = cluster {
        let _ = tokio::task::spawn_blocking(move || cluster.stop()).await;
    }
    Ok(())
}

/// The header value of `--tenant-csp`; empty means none.
fn tenant_csp(text: &str) -> Result<Option<hyper::header::HeaderValue>, String> {
    if text.trim().is_empty() {
        tracing::warn!("--tenant-csp is empty: tenants' pages run in the server's origin");
        return Ok(None);
    }
    hyper::header::HeaderValue::from_str(text)
        .map(Some)
        .map_err(|_| format!("--tenant-csp {text:?} is not a valid header value"))
}

/// Connects to the cluster's `postgres` database and creates `name` if needed.
async fn ensure_database(
    cluster: &LocalCluster,
    name: &str,
) -> Result<tokio_postgres::Config, String> {
    let (client, connection) = cluster
        .config("postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .map_err(|e| e.to_string())?
        .is_some();
    if !exists {
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(cluster.config(name))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down: draining in-flight requests");
}
