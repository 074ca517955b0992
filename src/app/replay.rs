//! Replay of a failed call: while a handler runs, what it receives from the outside world is
//! written down ([`recording`]); when the client gets a 500, 502 or 504, the recording is kept
//! (sealed, a few per tenant, for a day), and `pubfn replay` runs the handler again on this
//! machine with the same request, randomness, clock and capability answers ([`playback`]),
//! so the failure reproduces without the database or the network, and a fix can be tried on
//! the same inputs.

pub mod playback;
pub mod recording;

use std::collections::BTreeMap;
use std::sync::Arc;

use recording::{Bytes, RECORDING_VERSION, RecordedRequest, Recorder, Recording};
use serde::{Deserialize, Serialize};

use super::{App, AppError, Caller};
use crate::auth::AuthError;
use crate::control::ControlError;
use crate::control::model::LogEntry;
use crate::control::replays::PendingRecording;
use crate::control::store::RecordingInfo;
use crate::host::GuestRequest;
use crate::packages::PackageManifest;
use crate::sandbox::{CallSeed, Limits, PackageSet};

/// The statuses whose calls are kept for replay: the handler's failures (500), its upstream's
/// (502), its time running out (504).
pub const RECORDED_STATUSES: &[u16] = &[500, 502, 504];

/// The package set a recorded call ran with, whole: what `pubfn replay` installs on the
/// machine it runs on.
#[derive(Debug, Serialize, Deserialize)]
pub struct RecordedPackages {
    /// The set's hash (its manifest's; the recording's `package_set`).
    pub hash: String,
    /// Its modules, wheels and preload list.
    pub manifest: PackageManifest,
    /// Every blob the manifest names, by SHA-256 (base64).
    pub blobs: BTreeMap<String, Bytes>,
}

/// What one call needs kept to be replayed, gathered while it runs.
pub struct CallRecord {
    /// The capabilities' answers.
    pub recorder: Recorder,
    /// Its randomness and clock.
    pub seed: CallSeed,
    /// The request the guest got.
    pub request: Arc<GuestRequest>,
    /// The script.
    pub script: Arc<str>,
    /// The limits in force.
    pub limits: Limits,
    /// Its package set.
    pub packages: Option<Arc<PackageSet>>,
}

impl CallRecord {
    /// The recording of the call `log` describes; `None` if its answers were too large to keep.
    pub fn recording(&self, log: &LogEntry) -> Option<Recording> {
        let calls = self.recorder.calls()?;
        let uploaded_packages = self.packages.as_ref().is_some_and(|set| {
            std::fs::read_dir(set.dir.join(crate::packages::install::SITE_DIR))
                .is_ok_and(|mut entries| entries.next().is_some())
        });
        Some(Recording {
            version: RECORDING_VERSION,
            tenant: log.tenant.clone(),
            endpoint: log.endpoint.clone(),
            endpoint_version: log.version,
            request_id: log.request_id.clone(),
            status: log.status,
            error: log.error.clone(),
            traceback: log.traceback.clone(),
            script: self.script.to_string(),
            limits: self.limits,
            preload: self
                .packages
                .as_ref()
                .map(|set| set.preload.clone())
                .unwrap_or_default(),
            uploaded_packages,
            package_set: self
                .packages
                .as_ref()
                .filter(|_| uploaded_packages)
                .map(|set| set.hash.clone()),
            request: RecordedRequest::of(&self.request),
            seed: self.seed,
            calls,
        })
    }
}

impl App {
    /// Keeps the recording of the call `log` describes if the client got one of
    /// [`RECORDED_STATUSES`]; never waits for the store.
    pub(super) fn keep_recording(&self, record: &CallRecord, log: &LogEntry) {
        if !RECORDED_STATUSES.contains(&log.status) {
            return;
        }
        let Some(recording) = record.recording(log) else {
            tracing::info!(request_id = %log.request_id, "not recorded for replay: too large");
            return;
        };
        let contents = match serde_json::to_vec(&recording) {
            Ok(contents) => contents,
            Err(e) => {
                tracing::error!("serialising a replay recording: {e}");
                return;
            }
        };
        self.replays.keep(PendingRecording {
            tenant: recording.tenant,
            request_id: recording.request_id,
            endpoint: recording.endpoint,
            status: recording.status,
            calls: recording.calls.len(),
            contents,
        });
    }

    /// The tenant's kept recordings, newest first.
    pub async fn recordings(
        &self,
        caller: &Caller,
        tenant: &str,
    ) -> Result<Vec<RecordingInfo>, AppError> {
        caller.may_manage(tenant)?;
        Ok(self.store.recordings(tenant).await?)
    }

    /// The recording of `tenant`'s request `request_id`.
    pub async fn recording(
        &self,
        caller: &Caller,
        tenant: &str,
        request_id: &str,
    ) -> Result<Recording, AppError> {
        caller.may_manage(tenant)?;
        let contents = self.store.recording(tenant, request_id).await?;
        serde_json::from_slice(&contents)
            .map_err(|e| AppError::host("reading a kept replay recording", e))
    }

    /// The current values of the secrets the recorded call read, that the tenant still has:
    /// for the tenant's own admins only (not even the operator reads a tenant's secrets).
    pub async fn recording_secrets(
        &self,
        caller: &Caller,
        tenant: &str,
        request_id: &str,
    ) -> Result<BTreeMap<String, String>, AppError> {
        if !matches!(caller, Caller::TenantAdmin(own) if own == tenant) {
            return Err(AuthError::Forbidden(
                "only the tenant's own admins read its secrets; pass them with --secret".into(),
            )
            .into());
        }
        let recording = self.recording(caller, tenant, request_id).await?;
        let names: Vec<&str> = recording
            .calls
            .iter()
            .filter_map(|call| match call {
                recording::HostCall::Secret {
                    name,
                    outcome: recording::SecretOutcome::Found,
                } => Some(name.as_str()),
                _ => None,
            })
            .collect();
        Ok(self.store.secret_values(tenant, &names).await?)
    }

    /// The package set the recorded call ran with (its uploaded wheels and modules, and its
    /// preload list), for `pubfn replay` to install: whoever may read the recording may read
    /// the packages it ran (the tenant's admins and the operator).
    pub async fn recording_packages(
        &self,
        caller: &Caller,
        tenant: &str,
        request_id: &str,
    ) -> Result<RecordedPackages, AppError> {
        let recording = self.recording(caller, tenant, request_id).await?;
        let not_kept = |what: String| AppError::Control(ControlError::NotFound(what));
        let Some(hash) = recording.package_set else {
            return Err(not_kept(format!(
                "request {request_id:?} ran without uploaded packages"
            )));
        };
        // Endpoint versions keep their sets and blobs; a set no version uses any more is gone.
        let gone = || not_kept(format!("package set {hash} is no longer stored"));
        let manifest = self
            .store
            .package_set(tenant, &hash)
            .await?
            .ok_or_else(gone)?;
        let wanted = manifest.blobs();
        let mut blobs = self.store.package_blobs(tenant, &wanted).await?;
        let blobs = wanted
            .iter()
            .map(|sha| Some((sha.clone(), Bytes(blobs.remove(sha)?))))
            .collect::<Option<BTreeMap<_, _>>>()
            .ok_or_else(gone)?;
        Ok(RecordedPackages {
            hash,
            manifest,
            blobs,
        })
    }
}
