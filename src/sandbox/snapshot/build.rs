//! Building a snapshot: Wizer runs the interpreter's start-up (and a tenant's preload list)
//! once, under a deadline, and a failure is told apart as the tenant's import or the host's
//! runtime.

use wasmtime::{Module, Store};
use wasmtime_wizer::{WasmtimeWizer, Wizer};

use super::super::instance::new_host_state;
use super::super::{SandboxError, compiled};
use super::{PackageSet, Snapshots};

/// Time the one-off initialisation may run (CPython start-up takes well under 1 s). Measured
/// in time, not in epoch ticks: the scheduler bumps the epoch to preempt guests.
const INIT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// Time the interpreter's own start-up may take before a tenant's preload list starts counting
/// (it takes about 0.3 s on this machine; the margin is for a loaded one).
const STARTUP_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// Memory the initialisation may use.
const INIT_MEMORY_BYTES: usize = 256 << 20;
impl Snapshots {
    pub(super) async fn build(
        &self,
        tenant: &str,
        packages: Option<&PackageSet>,
    ) -> Result<Vec<u8>, SandboxError> {
        tracing::info!(
            tenant,
            packages = packages.map(|p| p.hash.as_str()),
            "building a pre-initialised interpreter snapshot"
        );
        let err = |what: &str, e: wasmtime::Error| SandboxError::snapshot(what, e);
        // A preload list naming a flavour's package (`pandas`) takes that flavour's larger
        // interpreter; every other tenant keeps the base one.
        let flavour = packages.and_then(|p| self.runtime.flavour_for(&p.preload));
        let interpreter = flavour.map_or(&self.runtime.wasm[..], |f| &f.wasm[..]);
        if let Some(flavour) = flavour {
            tracing::info!(
                tenant,
                flavour = flavour.name,
                "snapshot from a runtime flavour"
            );
        }
        let wizer = Wizer::new();
        let (cx, instrumented) = wizer
            .instrument(interpreter)
            .map_err(|e| err("instrument", e))?;
        // Every tenant's build starts from the same instrumented interpreter: compiled once,
        // then mapped. Named by its content, so a wasmtime-wizer that instruments differently
        // never meets a module that does not match its context.
        let path = self.dir.join(format!(
            "instrumented-{:032x}.cwasm",
            xxhash_rust::xxh3::xxh3_128(&instrumented)
        ));
        let engine = self.engine.clone();
        let module = tokio::task::spawn_blocking(move || match compiled::load(&engine, &path) {
            Some(module) => Ok(module),
            None => {
                let module = Module::new(&engine, &instrumented)?;
                if let Err(e) = compiled::save(&path, &module) {
                    tracing::warn!("saving the compiled instrumented interpreter: {e:#}");
                }
                Ok(module)
            }
        })
        .await
        .map_err(|e| SandboxError::snapshot("compile task failed", e))?
        .map_err(|e| err("compiling the instrumented interpreter", e))?;

        let output = crate::host::OutputCapture::new(64 << 10);
        let state = new_host_state(
            &self.runtime,
            INIT_MEMORY_BYTES,
            &output,
            Default::default(),
            packages.map(|p| p.dir.as_path()),
            // Seeded from the operating system: nothing replays a snapshot's build.
            &super::super::entropy::CallEntropy::new(),
        )?;
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limiter);
        // A preload list may take the tenant's CPU limit on top of the interpreter's start-up;
        // an import that loops ends there and is reported as the tenant's error.
        let preload_time = std::time::Duration::from_millis(packages.map_or(0, |p| p.preload_ms));
        let deadline = std::time::Instant::now()
            + if packages.is_some() {
                STARTUP_TIME + preload_time
            } else {
                INIT_DEADLINE
            };
        store.epoch_deadline_callback(move |_| {
            Ok(if std::time::Instant::now() >= deadline {
                wasmtime::UpdateDeadline::Interrupt
            } else {
                wasmtime::UpdateDeadline::Continue(1)
            })
        });
        store.set_epoch_deadline(1);
        let instance = self
            .linker
            .instantiate_async(&mut store, &module)
            .await
            .map_err(|e| err("instantiating the interpreter", e))?;
        // The reactor's own constructors first, then CPython start-up: what Wizer::run does.
        for name in ["_initialize", wizer.get_init_func()] {
            let init = instance
                .get_typed_func::<(), ()>(&mut store, name)
                .map_err(|e| err(&format!("finding export {name}"), e))?;
            if let Err(e) = init.call_async(&mut store, ()).await {
                let report = store.data_mut().error_report.take();
                return Err(init_failure(
                    name,
                    e,
                    report,
                    &output,
                    packages,
                    preload_time,
                ));
            }
        }
        wizer
            .snapshot(
                &cx,
                &mut WasmtimeWizer {
                    store: &mut store,
                    instance,
                },
            )
            .await
            .map_err(|e| err("snapshot", e))
    }
}

/// Why initialisation failed: the tenant's preload (with its traceback) when the driver
/// reported it or the preload ran out of time, else the host's broken runtime.
fn init_failure(
    export: &str,
    error: wasmtime::Error,
    report: Option<crate::host::GuestErrorReport>,
    output: &crate::host::OutputCapture,
    packages: Option<&PackageSet>,
    preload_time: std::time::Duration,
) -> SandboxError {
    use crate::host::error_report::ReportKind;
    let output = output.take();
    if let Some(report) = report.filter(|r| r.kind == ReportKind::Preload) {
        return SandboxError::Preload {
            message: report.message,
            traceback: report.traceback.unwrap_or_default() + &output,
        };
    }
    // The plain runtime starts (every tenant's first snapshot is built from it): with
    // packages, a failure that the driver did not report came from the tenant's imports too.
    if packages.is_some() {
        let interrupted = matches!(
            error.downcast_ref::<wasmtime::Trap>(),
            Some(wasmtime::Trap::Interrupt)
        );
        let message = if interrupted {
            format!(
                "the preload list did not finish importing within {} ms (the tenant's CPU \
                 limit)",
                preload_time.as_millis()
            )
        } else {
            format!("importing the tenant's packages stopped the interpreter: {error:#}")
        };
        return SandboxError::Preload {
            message,
            traceback: output,
        };
    }
    SandboxError::snapshot(
        format!("{export} failed; interpreter output: {output}"),
        error,
    )
}
