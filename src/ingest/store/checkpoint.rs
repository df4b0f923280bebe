//! The synced length of a segment: how many of its bytes an `fdatasync` has made durable, and so
//! how far records may have been acked. Kept in a small file next to the segment
//! (`segment-00000003.synced` beside `segment-00000003.log`).
//!
//! Why: recovery must tell a torn tail (the unsynced end of the last segment, never acked) from
//! damage to acked bytes. Scanning past the damage for valid frames (see `store/recover.rs`)
//! decides it wherever records follow the damage; the checkpoint decides it where none do (a
//! damaged last group, a segment cut short by hand): damage before the synced length is
//! corruption, whatever follows it.
//!
//! Cost: one 16-byte `pwrite` into the page cache after each group's `fdatasync`, and no sync of
//! its own (a second `fdatasync` per group would halve the commit rate on most disks). So the
//! checkpoint is exact across a crash of the process (the page cache keeps it) and, across a
//! power loss, as recent as the kernel's writeback made it (by default within 30 s). It is
//! written only after the `fdatasync` it records succeeded, so it never claims more than is
//! durable: a stale checkpoint only narrows what recovery can prove, it never turns a torn tail
//! into corruption.
//!
//! Format: `[synced length: u64 LE][CRC-32 of those 8 bytes: u32 LE][MAGIC: u32 LE]`. A missing,
//! short or mismatching file reads as 0 (nothing proven), as for logs written before it existed.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Marks a checkpoint file ("SGCK").
const MAGIC: u32 = u32::from_le_bytes(*b"SGCK");

/// Bytes of a checkpoint.
const LEN: usize = 16;

/// The checkpoint file of the segment at `segment`.
pub fn path_of(segment: &Path) -> PathBuf {
    segment.with_extension("synced")
}

/// The synced length recorded for the segment at `segment`, or 0 if none can be read.
pub fn read(segment: &Path) -> u64 {
    match std::fs::read(path_of(segment)) {
        Ok(bytes) => decode(&bytes).unwrap_or(0),
        Err(_) => 0,
    }
}

fn encode(synced: u64) -> [u8; LEN] {
    let mut bytes = [0; LEN];
    bytes[..8].copy_from_slice(&synced.to_le_bytes());
    let crc = crc32fast::hash(&bytes[..8]);
    bytes[8..12].copy_from_slice(&crc.to_le_bytes());
    bytes[12..].copy_from_slice(&MAGIC.to_le_bytes());
    bytes
}

fn decode(bytes: &[u8]) -> Option<u64> {
    let bytes: &[u8; LEN] = bytes.get(..LEN)?.try_into().ok()?;
    let synced: [u8; 8] = bytes[..8].try_into().ok()?;
    let crc = u32::from_le_bytes(bytes[8..12].try_into().ok()?);
    let magic = u32::from_le_bytes(bytes[12..].try_into().ok()?);
    (magic == MAGIC && crc == crc32fast::hash(&synced)).then(|| u64::from_le_bytes(synced))
}

/// The open checkpoint file of the segment being written.
#[derive(Debug)]
pub struct Checkpoint {
    file: File,
    path: PathBuf,
}

impl Checkpoint {
    /// Opens the checkpoint of the segment at `segment`; `fresh` (a new segment) empties it, so
    /// that a checkpoint left by an older segment of the same name proves nothing about this one.
    ///
    /// # Errors
    ///
    /// The file cannot be opened or emptied.
    pub fn open(segment: &Path, fresh: bool) -> io::Result<Checkpoint> {
        let path = path_of(segment);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(fresh)
            .open(&path)?;
        Ok(Checkpoint { file, path })
    }

    /// Records that the first `synced` bytes of the segment are durable. Call only after the
    /// `fdatasync` that made them so succeeded. Not synced itself (see the module docs).
    pub fn record(&self, synced: u64) {
        if let Err(error) = self.file.write_all_at(&encode(synced), 0) {
            // A stale checkpoint is safe (it proves less), so this is no reason to fail a write.
            tracing::warn!(%error, path = %self.path.display(), "cannot update the synced-length checkpoint");
        }
    }

    /// Records `synced` and makes it durable: for repairs, which rewrite a segment rarely.
    ///
    /// # Errors
    ///
    /// The write or the sync failed.
    pub fn record_synced(&self, synced: u64) -> io::Result<()> {
        self.file.write_all_at(&encode(synced), 0)?;
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_reads_back_and_damage_reads_as_nothing_proven() {
        let dir = tempfile::tempdir().unwrap();
        let segment = dir.path().join("segment-00000000.log");
        assert_eq!(read(&segment), 0, "missing");
        let checkpoint = Checkpoint::open(&segment, true).unwrap();
        checkpoint.record(12_345);
        assert_eq!(read(&segment), 12_345);
        checkpoint.record(99);
        assert_eq!(read(&segment), 99);
        let mut bytes = std::fs::read(path_of(&segment)).unwrap();
        bytes[0] ^= 1;
        std::fs::write(path_of(&segment), &bytes).unwrap();
        assert_eq!(read(&segment), 0, "checksum mismatch");
        std::fs::write(path_of(&segment), &bytes[..10]).unwrap();
        assert_eq!(read(&segment), 0, "short");
        let checkpoint = Checkpoint::open(&segment, false).unwrap();
        checkpoint.record_synced(7).unwrap();
        drop(Checkpoint::open(&segment, true).unwrap());
        assert_eq!(
            read(&segment),
            0,
            "a fresh segment starts with nothing proven"
        );
    }
}
