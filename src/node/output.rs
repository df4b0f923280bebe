//! The consumer of the stdout sink: the one task that writes protocol messages.

use futures::StreamExt;
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};

use super::protocol::Outbound;
use crate::sinks::SinkStream;

/// Writes every message of `outbound` as one JSON line to `writer`, flushing whenever the sink
/// has nothing more queued (so a burst costs one flush, and a lone reply is never held back).
/// Returns the number of lines written once every producer is gone and the queue is drained.
///
/// # Errors
///
/// Returns the first write error. The caller then drops the sink stream, so producers' later
/// emissions come back `Closed` instead of vanishing.
pub async fn write_lines<W>(outbound: &mut SinkStream<Outbound>, writer: W) -> std::io::Result<u64>
where
    W: AsyncWrite + Unpin,
{
    let mut writer = BufWriter::new(writer);
    let mut written = 0;
    let mut line = Vec::with_capacity(256);
    while let Some(message) = outbound.next().await {
        line.clear();
        serde_json::to_writer(&mut line, &message)?;
        line.push(b'\n');
        writer.write_all(&line).await?;
        written += 1;
        if outbound.is_empty() {
            writer.flush().await?;
        }
    }
    writer.flush().await?;
    Ok(written)
}
