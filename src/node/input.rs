//! The source: input lines become a [`Stream`] of sorted messages.

use futures::Stream;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use super::protocol::{Inbound, parse_line};

/// Reads `reader` line by line and sorts each line with [`parse_line`]. Blank lines are skipped.
/// The stream ends at end of input; a read error is yielded once, and then the stream ends.
pub fn inbound_stream<R>(reader: R) -> impl Stream<Item = std::io::Result<Inbound>>
where
    R: AsyncBufRead + Unpin,
{
    futures::stream::unfold(Some(reader.lines()), |lines| async move {
        let mut lines = lines?;
        loop {
            match lines.next_line().await {
                Ok(Some(line)) if line.trim().is_empty() => continue,
                Ok(Some(line)) => return Some((Ok(parse_line(&line)), Some(lines))),
                Ok(None) => return None,
                Err(error) => return Some((Err(error), None)),
            }
        }
    })
}
