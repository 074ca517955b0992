//! The one change event. The store publishes every change of a tenant in the transaction that
//! makes it (NOTIFY); every node, the one that made it included, hands it to
//! [`App::apply_change`], which lets go of what the change made stale, all together. The node
//! that made a change applies it at once too, so its own next request sees it.

use std::sync::Arc;
use std::time::Duration;

use super::App;
use crate::control::change::{self, Change, ChangeKind};

impl App {
    /// What every node does when `change` happens: the tenant's cached view goes (routes,
    /// keys, tokens, databases, secrets); with its databases, its connection pools; with its
    /// endpoints, its warm instances and cached code; with the tenant, its snapshot, permits
    /// and everything else it held.
    pub async fn apply_change(&self, change: &Change) {
        let tenant = change.tenant.as_str();
        self.registry.invalidate(tenant);
        match change.kind {
            ChangeKind::Tenant
            | ChangeKind::Tokens
            | ChangeKind::Secrets
            | ChangeKind::Egress
            | ChangeKind::Packages => {}
            ChangeKind::Databases => self.pools.forget_tenant(tenant),
            ChangeKind::Endpoints => self.sandbox.forget_instances(tenant),
            ChangeKind::Deleted => {
                self.pools.forget_tenant(tenant);
                self.in_flight.remove(tenant);
                self.budget.forget(tenant);
                let prefix = format!("{tenant}/");
                self.package_sets.retain(|key, _| !key.starts_with(&prefix));
                self.egress.forget_tenant(tenant);
                self.sandbox.forget_tenant(tenant).await;
            }
        }
    }

    /// Applies a change this node just made (its notification reaches the other nodes).
    pub(super) async fn changed(&self, tenant: &str, kind: ChangeKind) {
        self.apply_change(&Change::new(tenant, kind)).await;
    }

    /// Follows every node's changes until the process ends. After a lost connection every
    /// tenant's view is dropped (changes may have been missed) and it reconnects.
    pub async fn follow_changes(self: Arc<Self>, config: tokio_postgres::Config) {
        loop {
            let app = self.clone();
            let followed = change::follow(
                &config,
                || app.registry.invalidate_all(),
                |change| {
                    let app = app.clone();
                    async move { app.apply_change(&change).await }
                },
            )
            .await;
            if let Err(e) = followed {
                tracing::warn!("change notifications interrupted: {e}; re-syncing");
            }
            self.registry.invalidate_all();
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
