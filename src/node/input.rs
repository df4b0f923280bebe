//! The source: input bytes become a [`Stream`] of sorted messages.
//!
//! Input is read as bytes, not as `String` lines: one byte that is not UTF-8 must cost one line
//! (answered with error 12 where it names a sender), not the node (Maelstrom would mark the whole
//! run crashed). A line is held only up to a cap: a longer one is discarded chunk by chunk as it
//! arrives, so memory stays at the cap plus the reader's buffer whatever the input.

use futures::Stream;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use super::protocol::{Inbound, parse_bytes};

/// One line of input, without its newline.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// The line's bytes (at most the cap).
    Bytes(Vec<u8>),
    /// A line longer than the cap, skipped: how many bytes it had.
    TooLong(u64),
}

/// Splits input into lines of at most `cap` bytes, discarding longer ones without holding them.
pub struct LineReader<R> {
    reader: R,
    cap: usize,
    /// The line so far (never more than `cap` bytes).
    line: Vec<u8>,
    /// Bytes of an over-long line discarded so far, once it is over the cap.
    discarding: Option<u64>,
    /// The most `line` ever held: what the tests check the cap against.
    held_high_water: usize,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    /// Reads lines from `reader`, holding at most `cap` bytes of one.
    pub fn new(reader: R, cap: usize) -> Self {
        LineReader {
            reader,
            cap,
            line: Vec::new(),
            discarding: None,
            held_high_water: 0,
        }
    }

    /// The most bytes of one line held at once so far (besides the reader's own buffer).
    #[cfg(test)]
    pub fn held_high_water(&self) -> usize {
        self.held_high_water
    }

    /// The next line, or `None` at the end of input (a last line without a newline counts).
    ///
    /// # Errors
    ///
    /// The reader's.
    pub async fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            let chunk = self.reader.fill_buf().await?;
            if chunk.is_empty() {
                return Ok(match self.discarding.take() {
                    Some(len) => Some(Line::TooLong(len)),
                    None if self.line.is_empty() => None,
                    None => Some(Line::Bytes(std::mem::take(&mut self.line))),
                });
            }
            let newline = chunk.iter().position(|&byte| byte == b'\n');
            let part = &chunk[..newline.unwrap_or(chunk.len())];
            match &mut self.discarding {
                Some(len) => *len += part.len() as u64,
                None if self.line.len() + part.len() <= self.cap => {
                    self.line.extend_from_slice(part);
                    self.held_high_water = self.held_high_water.max(self.line.len());
                }
                None => {
                    self.discarding = Some((self.line.len() + part.len()) as u64);
                    // Give the memory back: the next line starts small.
                    self.line = Vec::new();
                }
            }
            let consumed = part.len() + usize::from(newline.is_some());
            self.reader.consume(consumed);
            if newline.is_some() {
                return Ok(Some(match self.discarding.take() {
                    Some(len) => Line::TooLong(len),
                    None => Line::Bytes(std::mem::take(&mut self.line)),
                }));
            }
        }
    }
}

/// Reads `reader` line by line (each at most `max_line_bytes`) and sorts each line with
/// [`parse_bytes`]; a longer line becomes [`Inbound::Oversized`]. Blank lines are skipped. The
/// stream ends at end of input; a read error is yielded once, and then the stream ends.
pub fn inbound_stream<R>(
    reader: R,
    max_line_bytes: usize,
) -> impl Stream<Item = std::io::Result<Inbound>>
where
    R: AsyncBufRead + Unpin,
{
    let lines = LineReader::new(reader, max_line_bytes);
    futures::stream::unfold(Some(lines), |lines| async move {
        let mut lines = lines?;
        loop {
            match lines.next_line().await {
                Ok(Some(Line::Bytes(line))) if line.trim_ascii().is_empty() => continue,
                Ok(Some(Line::Bytes(line))) => return Some((Ok(parse_bytes(&line)), Some(lines))),
                Ok(Some(Line::TooLong(len))) => {
                    return Some((Ok(Inbound::Oversized { len }), Some(lines)));
                }
                Ok(None) => return None,
                Err(error) => return Some((Err(error), None)),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line of `input` read through a buffer of `chunk` bytes with a cap of `cap`, and the
    /// most bytes of a line the reader held.
    async fn read_all(input: &[u8], chunk: usize, cap: usize) -> (Vec<Line>, usize) {
        let reader = tokio::io::BufReader::with_capacity(chunk, input);
        let mut lines = LineReader::new(reader, cap);
        let mut read = Vec::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            read.push(line);
        }
        (read, lines.held_high_water())
    }

    #[tokio::test]
    async fn lines_split_on_newlines_whatever_the_bytes() {
        let (lines, _) = read_all(b"a\n\xff\xfe\n\nlast", 3, 100).await;
        assert_eq!(
            lines,
            [
                Line::Bytes(b"a".to_vec()),
                Line::Bytes(b"\xff\xfe".to_vec()),
                Line::Bytes(Vec::new()),
                Line::Bytes(b"last".to_vec()),
            ]
        );
    }

    #[tokio::test]
    async fn a_line_over_the_cap_is_skipped_without_being_held_and_the_next_one_is_read() {
        const CAP: usize = 1 << 10;
        let mut input = vec![b'x'; 5 * CAP + 17];
        input.push(b'\n');
        input.extend_from_slice(&[b'y'; CAP]);
        input.push(b'\n');
        input.extend_from_slice(&[b'z'; CAP + 1]);
        for chunk in [1, 7, 64, 4096] {
            let (lines, held) = read_all(&input, chunk, CAP).await;
            assert_eq!(
                lines,
                [
                    Line::TooLong(5 * CAP as u64 + 17),
                    Line::Bytes(vec![b'y'; CAP]),
                    Line::TooLong(CAP as u64 + 1),
                ],
                "chunk {chunk}"
            );
            assert!(held <= CAP, "held {held} bytes with chunks of {chunk}");
        }
    }
}
