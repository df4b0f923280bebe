//! Repairing a damaged log (`sluicegate ingest repair`): each damaged segment keeps its intact
//! frames and the intact frames found after the damage; the damaged part moves to a file of its
//! own; every record that cannot be kept is reported. Nothing is deleted.
//!
//! Per damaged segment `segment-N.log` whose intact frames end at byte `D`:
//! 1. bytes `D..` are copied to `segment-N.log.damaged-D` (synced): everything the segment held
//!    after `D` stays on disk, including the intact frames about to be kept;
//! 2. the segment is rewritten as its bytes before `D` followed by the intact frames found after
//!    `D`, in order (through a temporary file renamed over it, so a crash leaves the old segment
//!    or the new one, never half of one);
//! 3. the last segment's checkpoint is set to the new length.
//!
//! A torn tail is moved aside the same way (a server would cut it off). A segment that ends
//! before its synced length has nothing to move: its checkpoint is set back to its length and
//! the missing bytes are reported.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::StoreError;
use super::checkpoint::{self, Checkpoint};
use super::embedded::{io_error, segments, sync_dir};
use super::frame;
use super::recover::{self, Damage, Lost, Verdict};

/// What repairing one segment did.
#[derive(Debug, Clone)]
pub struct Repaired {
    /// The segment.
    pub segment: PathBuf,
    /// Where its intact frames ended: what follows was moved aside.
    pub offset: u64,
    /// Why it needed repair.
    pub reason: &'static str,
    /// The file the bytes from `offset` on were moved to (`None` if there were none: the segment
    /// ended before its synced length).
    pub moved_to: Option<PathBuf>,
    /// Ids of the intact records found after the damage, appended again after the intact part.
    pub kept: Vec<String>,
    /// What after the damage could not be kept.
    pub lost: Vec<Lost>,
}

/// What `repair_dir` did.
#[derive(Debug, Clone, Default)]
pub struct RepairReport {
    /// Segment files looked at.
    pub segments: usize,
    /// The segments repaired, in order.
    pub repaired: Vec<Repaired>,
}

/// Repairs every damaged segment of the log in `dir` (see the module docs). Do not run it while a
/// server has the log open.
///
/// # Errors
///
/// I/O failures: then the segment being repaired is as it was, or repaired (never half), and its
/// damaged part may already have been copied aside.
pub fn repair_dir(dir: &Path) -> Result<RepairReport, StoreError> {
    let found = segments(dir)?;
    let mut report = RepairReport {
        segments: found.len(),
        ..RepairReport::default()
    };
    let count = found.len();
    for (position, (_, path)) in found.iter().enumerate() {
        let last = position + 1 == count;
        let synced = if last { checkpoint::read(path) } else { 0 };
        let bytes = fs::read(path).map_err(io_error("reading", path))?;
        let examination = recover::examine(&bytes, |_| {});
        let reason = match examination.judge(last, synced) {
            Verdict::Clean => continue,
            Verdict::TornTail { .. } => "torn tail (never acked)",
            Verdict::Corrupt { reason, .. } => reason,
        };
        let repaired = match examination.damage {
            Some(damage) => move_aside(path, &bytes, damage, reason, last)?,
            None => {
                // Cut short: nothing to move, the missing bytes are gone.
                let end = examination.end;
                Checkpoint::open(path, false)
                    .and_then(|checkpoint| checkpoint.record_synced(end))
                    .map_err(io_error("resetting the checkpoint of", path))?;
                Repaired {
                    segment: path.clone(),
                    offset: end,
                    reason,
                    moved_to: None,
                    kept: Vec::new(),
                    lost: vec![Lost::Bytes {
                        offset: end,
                        len: synced - end,
                    }],
                }
            }
        };
        tracing::warn!(
            segment = %path.display(), offset = repaired.offset, reason,
            kept = repaired.kept.len(), lost = repaired.lost.len(),
            moved_to = ?repaired.moved_to, "repaired a damaged segment"
        );
        report.repaired.push(repaired);
    }
    Ok(report)
}

/// Steps 1 to 3 of the module docs for one segment.
fn move_aside(
    path: &Path,
    bytes: &[u8],
    damage: Damage,
    reason: &'static str,
    last: bool,
) -> Result<Repaired, StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let offset = damage.offset;
    let cut = usize::try_from(offset).expect("an offset within a file read into memory");
    let moved_to = write_new(&damaged_path(path, offset), &bytes[cut..])?;
    sync_dir(dir)?;

    let mut repaired = bytes[..cut].to_vec();
    let mut kept = Vec::with_capacity(damage.later.len());
    for (_, record) in &damage.later {
        frame::encode(record, &mut repaired);
        kept.push(record.id.clone());
    }
    let temporary = path.with_extension("log.repairing");
    let mut file = File::create(&temporary).map_err(io_error("creating", &temporary))?;
    file.write_all(&repaired)
        .and_then(|()| file.sync_all())
        .map_err(io_error("writing", &temporary))?;
    fs::rename(&temporary, path).map_err(io_error("replacing", path))?;
    sync_dir(dir)?;
    if last {
        Checkpoint::open(path, false)
            .and_then(|checkpoint| checkpoint.record_synced(repaired.len() as u64))
            .map_err(io_error("resetting the checkpoint of", path))?;
    }
    Ok(Repaired {
        segment: path.to_owned(),
        offset,
        reason,
        moved_to: Some(moved_to),
        kept,
        lost: damage.lost,
    })
}

/// `segment-N.log.damaged-OFFSET`, or with `.2`, `.3`... after it if that exists already.
fn damaged_path(path: &Path, offset: u64) -> PathBuf {
    let base = format!("{}.damaged-{offset}", path.display());
    let mut candidate = PathBuf::from(&base);
    let mut copy = 1;
    while candidate.exists() {
        copy += 1;
        candidate = PathBuf::from(format!("{base}.{copy}"));
    }
    candidate
}

/// Writes `bytes` to a new file at `path` (never over an existing one) and syncs it.
fn write_new(path: &Path, bytes: &[u8]) -> Result<PathBuf, StoreError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_error("creating", path))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_error("writing", path))?;
    Ok(path.to_owned())
}
