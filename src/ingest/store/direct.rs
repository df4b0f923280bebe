//! Writing a segment around the page cache (`O_DIRECT`), in whole aligned blocks.
//!
//! A buffered `write` copies every byte into the page cache, and the `fdatasync` after it walks
//! those pages again to send them to the disk; the log never reads them back. Profiles of the
//! ingest benchmark put that page-cache work at about a tenth of the server's CPU. A direct write
//! hands the buffer to the device instead, and the `fdatasync` that follows only has to persist
//! the file's size and flush the device's cache.
//!
//! Direct writes must start at a block-aligned offset, from a block-aligned address, and cover
//! whole blocks. The log's end rarely falls on a block boundary, so each write starts at the
//! block that holds the end, rewriting the bytes already there (its *head*, kept in memory) and
//! ending with zeros up to the next boundary (the *padding*, which the next write overwrites;
//! [`frame::decode`](super::frame::decode) reads zeros as the end). The page cache writes the
//! same partial block over and over too, so rewriting it from memory adds no new way to lose
//! acked bytes.

use std::fs::File;
use std::path::Path;

/// The alignment of every direct write: offset, address and length. 4096 satisfies devices with
/// 512-byte and 4096-byte logical blocks alike.
pub const BLOCK: usize = 4096;

/// Opens `path` for direct writes, or `None` where the platform or the filesystem cannot do
/// them (tmpfs before Linux 6.6, some FUSE and network filesystems), so the caller writes
/// through the page cache.
pub fn open(path: &Path) -> Option<File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let flags = rustix::fs::OFlags::DIRECT.bits();
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(flags.cast_signed())
            .open(path)
        {
            Ok(file) => Some(file),
            Err(error) => {
                tracing::info!(%error, path = %path.display(), "no O_DIRECT here; writing through the page cache");
                None
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        None
    }
}

/// The bytes of one write: the head of the block the log ends in, then the new frames, then
/// zero padding to the next block boundary, starting at a block-aligned address.
///
/// A plain `Vec<u8>` whose first `start` bytes are skipped: the allocation is reserved up front
/// for everything the write will hold, so appending never moves it off its alignment.
#[derive(Debug, Default)]
pub struct BlockBuffer {
    bytes: Vec<u8>,
    /// Bytes skipped to reach the alignment.
    start: usize,
    /// Where head and frames end (and the padding starts), once sealed.
    end: usize,
}

/// The bytes of `content` after its last block boundary, where `content` starts on one: the head
/// of the next write after `content`.
pub fn after_last_boundary(content: &[u8]) -> &[u8] {
    &content[content.len() / BLOCK * BLOCK..]
}

/// Bytes from `address` to the next multiple of [`BLOCK`].
fn gap_to_alignment(address: usize) -> usize {
    (BLOCK - address % BLOCK) % BLOCK
}

impl BlockBuffer {
    /// Starts a write of `head` (the bytes of the log's last partial block), then `frames`
    /// bytes appended through [`frames`](Self::frames).
    pub fn begin(&mut self, head: &[u8], frames: usize) {
        let needed = (head.len() + frames).next_multiple_of(BLOCK) + BLOCK;
        // Do not keep a huge allocation after one huge batch.
        if self.bytes.capacity() > (8 << 20).max(2 * needed) {
            self.bytes = Vec::new();
        }
        self.bytes.clear();
        self.bytes.reserve(needed);
        self.start = gap_to_alignment(self.bytes.as_ptr().addr());
        self.bytes.resize(self.start, 0);
        self.bytes.extend_from_slice(head);
        self.end = self.bytes.len();
    }

    /// The buffer to append the frames to, up to the size given to [`begin`](Self::begin).
    pub fn frames(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// Ends the frames and pads them with zeros to whole blocks.
    ///
    /// # Panics
    ///
    /// If more was appended than [`begin`](Self::begin) made room for: the allocation moved off
    /// its alignment.
    pub fn seal(&mut self) {
        assert_eq!(
            gap_to_alignment(self.bytes.as_ptr().addr()),
            self.start,
            "a block buffer outgrew the room it was given"
        );
        self.end = self.bytes.len();
        let padded = (self.end - self.start).next_multiple_of(BLOCK);
        self.bytes.resize(self.start + padded, 0);
    }

    /// Head, frames and padding in whole blocks, from the aligned start: what a direct write
    /// writes at the start of the block the log ends in.
    pub fn blocks(&self) -> &[u8] {
        &self.bytes[self.start..]
    }

    /// Head and frames without the padding: what a write through the page cache writes at the
    /// start of the block the log ends in.
    pub fn head_and_frames(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    /// The head of the next write once this one is on disk: the bytes of head and frames after
    /// their last block boundary.
    pub fn next_head(&self) -> &[u8] {
        after_last_boundary(self.head_and_frames())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_aligned_whole_and_hold_head_then_frames_then_zeros() {
        let mut buffer = BlockBuffer::default();
        for (head_len, frames_len) in [(0, 1), (10, 4086), (10, 4087), (4095, 9000), (0, 4096)] {
            let head = vec![7; head_len];
            buffer.begin(&head, frames_len);
            buffer.frames().extend(std::iter::repeat_n(9, frames_len));
            buffer.seal();
            assert_eq!(buffer.head_and_frames().len(), head_len + frames_len);
            let blocks = buffer.blocks().to_vec();
            assert_eq!(buffer.blocks().as_ptr().addr() % BLOCK, 0);
            assert_eq!(blocks.len() % BLOCK, 0);
            assert!(blocks.len() < head_len + frames_len + BLOCK);
            assert!(blocks[..head_len].iter().all(|&byte| byte == 7));
            let frames_end = head_len + frames_len;
            assert!(blocks[head_len..frames_end].iter().all(|&byte| byte == 9));
            assert!(blocks[frames_end..].iter().all(|&byte| byte == 0));
            let next = buffer.next_head();
            assert_eq!(next.len(), frames_end % BLOCK);
            assert_eq!(next, &blocks[frames_end - next.len()..frames_end]);
        }
    }
}
