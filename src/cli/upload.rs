//! `pubfn db load`: a CSV file streamed to the admin API, with its progress on a terminal.

use std::io::{IsTerminal, Write};
use std::path::Path;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::StreamBody;
use hyper::body::Frame;
use serde_json::Value;
use tokio::io::AsyncReadExt;

use super::admin_client::{ServerArgs, send};

/// Bytes read from the file per piece sent.
const CHUNK: usize = 256 << 10;

/// Streams `csv` into `table` of the tenant's database `name`; prints progress to a terminal.
pub async fn load_csv(
    server: &ServerArgs,
    tenant: &str,
    name: &str,
    table: &str,
    csv: &Path,
) -> Result<Value, String> {
    let file = tokio::fs::File::open(csv)
        .await
        .map_err(|e| format!("cannot read {}: {e}", csv.display()))?;
    let total = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let show = std::io::stderr().is_terminal();
    let pieces = futures_util::stream::unfold((file, 0u64), move |(mut file, sent)| async move {
        let mut buffer = vec![0u8; CHUNK];
        match file.read(&mut buffer).await {
            Ok(0) => {
                if show {
                    eprintln!();
                }
                None
            }
            Ok(n) => {
                buffer.truncate(n);
                let sent = sent + n as u64;
                if show {
                    progress(sent, total);
                }
                Some((Ok(Frame::data(Bytes::from(buffer))), (file, sent)))
            }
            Err(e) => Some((Err(e), (file, sent))),
        }
    });
    let path = format!("/tenants/{tenant}/databases/{name}/tables/{table}/csv");
    send(
        server,
        "POST",
        &path,
        "text/csv",
        StreamBody::new(pieces.boxed()),
    )
    .await
}

fn progress(sent: u64, total: u64) {
    let mib = |bytes: u64| bytes as f64 / (1 << 20) as f64;
    let percent = (sent * 100).checked_div(total).unwrap_or(100);
    eprint!(
        "\r  sent {:.1} of {:.1} MiB ({percent} %)",
        mib(sent),
        mib(total)
    );
    let _ = std::io::stderr().flush();
}
