//! What changed: published by the store in the same transaction as the change (PostgreSQL's
//! NOTIFY, delivered at commit to every node), and handled on every node by one function
//! (`app::App::apply_change`).

use std::future::Future;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_postgres::AsyncMessage;

/// The NOTIFY channel on which every change is announced.
pub const CHANGES_CHANNEL: &str = "pubfn_changes";

/// What part of a tenant changed: it decides what each node lets go of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Created, or its caps changed.
    Tenant,
    /// An endpoint was deployed, rolled back or deleted.
    Endpoints,
    /// A token was issued or revoked.
    Tokens,
    /// A database was added, removed or renamed.
    Databases,
    /// A secret was set or deleted.
    Secrets,
    /// The egress allow-list or a stored connection changed.
    Egress,
    /// The tenant's package set (modules, wheels, preload) changed: what its next deploy and
    /// drafts use; deployed versions keep theirs.
    Packages,
    /// The tenant and everything it owned are gone.
    Deleted,
}

/// One change of one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The tenant.
    pub tenant: String,
    /// What changed.
    pub kind: ChangeKind,
}

impl Change {
    /// A change of `kind` to `tenant`.
    pub fn new(tenant: &str, kind: ChangeKind) -> Self {
        Change {
            tenant: tenant.to_string(),
            kind,
        }
    }

    /// The NOTIFY payload.
    pub fn payload(&self) -> String {
        serde_json::to_string(self).expect("a change serialises")
    }

    /// Reads a NOTIFY payload. A bare tenant name (what nodes before this format sent) means
    /// anything may have changed: it is handled as a deletion would be, which drops all the
    /// tenant's state on this node (a tenant that still exists is simply loaded again).
    pub fn from_payload(payload: &str) -> Self {
        serde_json::from_str(payload).unwrap_or_else(|_| Change::new(payload, ChangeKind::Deleted))
    }
}

/// Listens for changes on a connection of its own and hands each to `apply`, in order, until
/// the connection is lost (an error) or closes. `listening` runs once LISTEN has taken
/// effect: anything cached before may be stale.
pub async fn follow<A, F>(
    config: &tokio_postgres::Config,
    listening: impl FnOnce(),
    apply: A,
) -> Result<(), tokio_postgres::Error>
where
    A: Fn(Change) -> F,
    F: Future<Output = ()>,
{
    let (client, mut connection) = config.connect(tokio_postgres::NoTls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    let _ = tx.send(Ok(Change::from_payload(n.payload())));
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {CHANGES_CHANNEL}"))
        .await?;
    listening();
    while let Some(change) = rx.recv().await {
        apply(change?).await;
    }
    driver.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_old_ones_mean_everything() {
        let change = Change::new("acme", ChangeKind::Endpoints);
        assert_eq!(Change::from_payload(&change.payload()), change);
        assert_eq!(
            Change::from_payload("acme"),
            Change::new("acme", ChangeKind::Deleted)
        );
    }
}
