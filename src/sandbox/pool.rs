//! Idle warm instances, kept per (tenant, endpoint, version) for `warm` endpoints.

use std::collections::HashMap;
use std::sync::Mutex;

use super::instance::Instance;
use super::limits::Limits;

/// What a warm instance may be reused for: never another tenant, endpoint, version or limits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WarmKey {
    /// Tenant name.
    pub tenant: String,
    /// Endpoint name.
    pub endpoint: String,
    /// Script version.
    pub version: String,
    /// The limits the instance was made under (its memory cap and output buffer are fixed).
    pub limits: Limits,
}

/// Idle instances waiting for their next request.
pub(crate) struct WarmPool {
    idle: Mutex<HashMap<WarmKey, Vec<Instance>>>,
    max_idle_per_key: usize,
}

impl WarmPool {
    pub fn new(max_idle_per_key: usize) -> Self {
        WarmPool {
            idle: Mutex::default(),
            max_idle_per_key,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<WarmKey, Vec<Instance>>> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An idle instance for `key`, if there is one.
    pub fn take(&self, key: &WarmKey) -> Option<Instance> {
        let mut idle = self.lock();
        let instances = idle.get_mut(key)?;
        let instance = instances.pop();
        if instances.is_empty() {
            idle.remove(key);
        }
        instance
    }

    /// Parks a healthy instance; drops it when its key already has enough idle ones.
    pub fn put(&self, key: WarmKey, instance: Instance) {
        let mut idle = self.lock();
        let instances = idle.entry(key).or_default();
        if instances.len() < self.max_idle_per_key {
            instances.push(instance);
        }
    }

    /// Drops one idle instance (of any key) to free its engine slot; false if none was idle.
    pub fn evict_one(&self) -> bool {
        let mut idle = self.lock();
        let Some(key) = idle.keys().next().cloned() else {
            return false;
        };
        let instances = idle.get_mut(&key).expect("key just seen");
        instances.pop();
        if instances.is_empty() {
            idle.remove(&key);
        }
        true
    }

    /// Drops every idle instance of a tenant (deleted, or its endpoints changed).
    pub fn forget_tenant(&self, tenant: &str) {
        self.lock().retain(|key, _| key.tenant != tenant);
    }

    /// Number of idle instances.
    pub fn idle_count(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    /// Idle instances per tenant.
    pub fn idle_by_tenant(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for (key, instances) in self.lock().iter() {
            *counts.entry(key.tenant.clone()).or_default() += instances.len();
        }
        counts
    }
}
