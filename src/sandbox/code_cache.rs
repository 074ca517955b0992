//! Code objects compiled by an endpoint version's first instance, handed to its later ones so
//! that a strict request does not compile its script again (guest-sdk/ABI.md, ops 7 and 8).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Bytes of code objects kept at most; past this the cache starts over (they are rebuilt by
/// the next instance of each endpoint version, at the cost of one compile each).
const MAX_TOTAL_BYTES: usize = 64 << 20;

/// Which script a code object was compiled from: an endpoint version of one tenant, and the
/// digest of the source itself, so a key can never name another script's code.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct CodeKey {
    pub tenant: String,
    pub endpoint: String,
    pub version: String,
    pub script: [u8; 32],
}

/// The cache; shared by all of the sandbox's threads.
#[derive(Default)]
pub(crate) struct CodeCache {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<CodeKey, Arc<[u8]>>,
    bytes: usize,
}

impl CodeCache {
    /// The code object for `key`, if an earlier instance offered one.
    pub fn get(&self, key: &CodeKey) -> Option<Arc<[u8]>> {
        self.lock().entries.get(key).cloned()
    }

    /// Keeps `code` for `key` (offered by an instance whose script then loaded).
    pub fn put(&self, key: CodeKey, code: Vec<u8>) {
        let mut inner = self.lock();
        if inner.bytes + code.len() > MAX_TOTAL_BYTES {
            inner.entries.clear();
            inner.bytes = 0;
        }
        inner.bytes += code.len();
        if let Some(previous) = inner.entries.insert(key, Arc::from(code)) {
            inner.bytes -= previous.len();
        }
    }

    /// Drops every code object of `tenant`.
    pub fn forget_tenant(&self, tenant: &str) {
        let mut inner = self.lock();
        let mut freed = 0;
        inner.entries.retain(|key, code| {
            let keep = key.tenant != tenant;
            if !keep {
                freed += code.len();
            }
            keep
        });
        inner.bytes -= freed;
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while holding the lock; the map is sound even if something did.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(tenant: &str, version: &str) -> CodeKey {
        CodeKey {
            tenant: tenant.into(),
            endpoint: "e".into(),
            version: version.into(),
            script: [7; 32],
        }
    }

    #[test]
    fn another_script_under_the_same_version_misses() {
        let cache = CodeCache::default();
        cache.put(key("a", "draft"), vec![1; 10]);
        let other = CodeKey {
            script: [8; 32],
            ..key("a", "draft")
        };
        assert!(cache.get(&other).is_none());
    }

    #[test]
    fn entries_are_per_tenant_and_version_and_forgotten_with_their_tenant() {
        let cache = CodeCache::default();
        cache.put(key("a", "1"), vec![1; 10]);
        cache.put(key("b", "1"), vec![2; 10]);
        assert_eq!(cache.get(&key("a", "1")).as_deref(), Some(&[1u8; 10][..]));
        assert!(cache.get(&key("a", "2")).is_none());
        cache.forget_tenant("a");
        assert!(cache.get(&key("a", "1")).is_none());
        assert!(cache.get(&key("b", "1")).is_some());
        assert_eq!(cache.lock().bytes, 10);
    }

    #[test]
    fn a_full_cache_starts_over() {
        let cache = CodeCache::default();
        cache.put(key("a", "1"), vec![0; MAX_TOTAL_BYTES - 5]);
        cache.put(key("a", "2"), vec![0; 10]);
        assert!(cache.get(&key("a", "1")).is_none());
        assert!(cache.get(&key("a", "2")).is_some());
        assert_eq!(cache.lock().bytes, 10);
    }
}
