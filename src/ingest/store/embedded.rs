//! The durable embedded store: an append-only log of segment files.
//!
//! Each record is one frame (`[length][CRC-32][protobuf body]`, see [`frame`]). A batch of
//! records is written with one positional write and made durable with one `fdatasync` before
//! anyone is told it is stored. A segment is synced, and cut to its last frame, before the next
//! one is started, so a crash can leave only the tail of the last segment torn; [`Store::open`]
//! truncates it, and since nothing in a torn tail was ever acked, nothing acked is lost. After
//! each `fdatasync` the segment's synced length is written to its checkpoint (see
//! `store/checkpoint.rs`), so that recovery can tell a torn tail from damage to acked bytes
//! (`store/recover.rs`): damage that is not a torn tail makes [`Store::open`] refuse with
//! [`StoreError::Corrupt`], and nothing is cut.
//!
//! Writes go around the page cache (`O_DIRECT`, in whole blocks; see `store/direct.rs`) where the
//! filesystem allows it, and through it elsewhere. A direct write that fails is tried once more
//! through the page cache (without padding: on a full disk the frames may still fit); unless it
//! ran out of room (full disk, quota, file size limit), direct writes stay off for the rest of
//! the segment. The retry writes the whole block the log ends in from memory, so a failed direct
//! write cannot leave damaged acked bytes behind for the page cache to keep.
//!
//! The last segment of a log written with direct writes ends in zero padding (less than a block;
//! a finished segment is cut to its last frame). Versions of sluicegate before direct writes
//! read zeros as empty records, so do not open such a log with them.
//!
//! Why a log and not `redb`: the workload is append-only with no reads on the hot path, so a
//! B-tree's page writes and copy-on-write commits would cost more per batch than one sequential
//! write and one `fdatasync`; the framing and recovery fit in a page of code that the crash test
//! exercises, and `crc32fast` is the only dependency.
//!
//! The test `an_appended_record_reads_back` below shows an append read back.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::checkpoint::{self, Checkpoint};
use super::direct::{self, BlockBuffer};
use super::recover::{self, Verdict};
use super::{Appended, Outcome, PendingSync, RecentIds, RecordStore, StoreError};
use super::{frame, page_cache};
use crate::ingest::proto::Record;

pub(super) fn io_error<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |error| StoreError::Io {
        what,
        path: path.to_owned(),
        error,
    }
}

/// How the store is laid out and how much it remembers.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// A segment is closed and a new one started once it holds this many bytes.
    pub segment_bytes: u64,
    /// How many recently stored ids are remembered (at least; at most twice as many) to make
    /// retries idempotent.
    pub dedup_window: usize,
    /// Write around the page cache (`O_DIRECT`) where the filesystem allows it.
    pub direct_io: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            segment_bytes: 64 << 20,
            dedup_window: 100_000,
            direct_io: true,
        }
    }
}

/// What opening the embedded store found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Intact records in the log.
    pub records: u64,
    /// Segment files.
    pub segments: usize,
    /// Bytes of torn tail cut off the last segment (0 after a clean shutdown).
    pub truncated_bytes: u64,
}

/// The writer's handle on the log. One writer at a time.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    options: StoreOptions,
    /// Shared with the pending syncs of written batches.
    segment: Arc<File>,
    segment_path: PathBuf,
    segment_index: u64,
    /// Where the last intact frame ends (zero padding may follow it in the file).
    segment_len: u64,
    /// Where the segment's synced length is recorded after each sync; shared with the syncs.
    checkpoint: Arc<Checkpoint>,
    /// The segment opened for direct writes, unless they are off or impossible.
    direct: Option<File>,
    /// The segment's bytes after its last block boundary, which a direct write rewrites.
    head: Vec<u8>,
    /// Set when a sync failed, or a failed write could not be cut back: every later write is
    /// refused. Shared with the pending syncs, which set it.
    broken: Arc<OnceLock<String>>,
    recent: RecentIds,
    buffer: BlockBuffer,
}

pub(super) fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("segment-{index:08}.log"))
}

/// The segment files of `dir`, in order.
pub(super) fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StoreError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error("listing", dir))? {
        let entry = entry.map_err(io_error("listing", dir))?;
        let name = entry.file_name();
        let Some(index) = name
            .to_str()
            .and_then(|name| name.strip_prefix("segment-"))
            .and_then(|rest| rest.strip_suffix(".log"))
            .and_then(|digits| digits.parse::<u64>().ok())
        else {
            continue;
        };
        found.push((index, entry.path()));
    }
    found.sort();
    Ok(found)
}

/// True for the failures of a write that a shorter write may avoid: a full disk, a quota, a file
/// size limit. (A direct write that a size limit shortens to a misaligned length fails with
/// EINVAL instead, and turns direct writes off for the segment like any other failure.)
fn out_of_room(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge
    )
}

/// Records why the store refuses writes from now on; the first reason stays.
fn mark_broken(broken: &OnceLock<String>, detail: String) {
    if broken.set(detail).is_err() {
        tracing::debug!("the store was already refusing writes");
    }
}

/// Syncs a directory so that a file created in it survives a crash.
pub(super) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(io_error("syncing directory", dir))
}

/// Creates `dir` and any missing parents readable by their owner only (0700 on Unix). A
/// directory that already exists keeps its mode: the operator chose it.
fn owner_only_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

impl Store {
    /// Opens (or creates) the log in `dir`, truncating a torn tail of the last segment and
    /// filling the dedup window with the most recently stored ids.
    ///
    /// # Errors
    ///
    /// I/O failures, and [`StoreError::Corrupt`] if a segment is damaged where a crash cannot
    /// have torn it (see `store/recover.rs`).
    pub fn open(dir: &Path, options: StoreOptions) -> Result<(Store, Recovery), StoreError> {
        owner_only_dir(dir).map_err(io_error("creating", dir))?;
        let mut recent = RecentIds::new(options.dedup_window);
        let mut recovery = Recovery::default();
        let found = segments(dir)?;
        recovery.segments = found.len();
        let last_index = found.last().map(|(index, _)| *index);
        // The end of the last segment's intact frames, and the bytes after its last block.
        let (mut segment_len, mut head) = (0, Vec::new());
        for (index, path) in &found {
            let last = Some(*index) == last_index;
            let synced = if last { checkpoint::read(path) } else { 0 };
            let bytes = fs::read(path).map_err(io_error("reading", path))?;
            let examination = recover::examine(&bytes, |record| {
                recovery.records += 1;
                recent.remember(&record.id);
            });
            if last {
                segment_len = examination.end;
                head = direct::after_last_boundary(&bytes[..examination.end as usize]).to_vec();
            }
            let (offset, reason) = match examination.judge(last, synced) {
                Verdict::Clean => continue,
                Verdict::Corrupt {
                    offset,
                    reason,
                    records_after,
                } => {
                    return Err(StoreError::Corrupt {
                        path: path.clone(),
                        offset,
                        reason,
                        records_after,
                    });
                }
                Verdict::TornTail { offset, reason } => (offset, reason),
            };
            // A torn tail of the last segment is a write that never completed, so never acked.
            let file = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(io_error("opening", path))?;
            file.set_len(offset)
                .and_then(|()| file.sync_all())
                .map_err(io_error("truncating", path))?;
            recovery.truncated_bytes = bytes.len() as u64 - offset;
            tracing::warn!(
                segment = %path.display(), offset, reason,
                cut = recovery.truncated_bytes, "truncated a torn tail"
            );
        }
        let segment_index = last_index.unwrap_or(0);
        let path = segment_path(dir, segment_index);
        let segment = Self::open_segment(dir, &path, false)?;
        let checkpoint =
            Checkpoint::open(&path, found.is_empty()).map_err(io_error("opening", &path))?;
        let store = Store {
            dir: dir.to_owned(),
            options,
            segment: Arc::new(segment),
            checkpoint: Arc::new(checkpoint),
            direct: options.direct_io.then(|| direct::open(&path)).flatten(),
            segment_path: path,
            segment_index,
            segment_len,
            head,
            broken: Arc::default(),
            recent,
            buffer: BlockBuffer::default(),
        };
        Ok((store, recovery))
    }

    /// Opens a segment for positional writes (zero padding may follow its last frame), creating
    /// it if it does not exist. A `new` segment must be empty: one left by a roll that failed
    /// after creating it is taken, one holding anything is refused.
    fn open_segment(dir: &Path, path: &Path, new: bool) -> Result<File, StoreError> {
        let existed = path.exists();
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(false);
        // Records are whatever clients sent: nobody but the server's user reads them.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path).map_err(io_error("opening", path))?;
        if new {
            let len = file.metadata().map_err(io_error("reading", path))?.len();
            if len > 0 {
                return Err(io_error("starting", path)(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("the next segment already holds {len} bytes"),
                )));
            }
        }
        // Also after a roll that failed here: the file may exist without a synced entry.
        if !existed || new {
            sync_dir(dir)?;
        }
        Ok(file)
    }

    /// True if a record with this id was written (or claimed) recently, within the dedup window,
    /// and the store is intact.
    #[cfg(test)]
    pub fn contains(&self, id: &str) -> bool {
        self.broken.get().is_none() && self.recent.contains(id)
    }

    /// Claims `ids` for a write ([`RecordStore::claim_all`]). A broken store claims nothing:
    /// every id goes to a write, which refuses it.
    pub fn claim_all(&mut self, ids: &[&str]) -> Vec<bool> {
        if self.broken.get().is_some() {
            return vec![true; ids.len()];
        }
        self.recent.claim_all(ids)
    }

    /// Ids forgotten by the dedup window so far.
    pub fn dedup_forgotten(&self) -> u64 {
        self.recent.forgotten()
    }

    /// Appends `records`, makes them durable (`fdatasync`) before returning, and remembers their
    /// ids: the direct way in, for tools and tests (the store writer claims ids and calls
    /// [`RecordStore::write_batch`]). Callers filter repeats with [`contains`](Self::contains)
    /// first; this writes whatever it is given.
    ///
    /// # Errors
    ///
    /// As for [`write`](Self::write) and [`PendingSync::run`]; then none of `records` may be
    /// considered stored.
    #[cfg(test)]
    pub fn append(&mut self, records: &[&Record]) -> Result<(), StoreError> {
        self.write(records)?.run()?;
        for record in records {
            self.recent.remember(&record.id);
        }
        Ok(())
    }

    /// Writes `records` to the segment, without waiting for the disk:
    /// the returned [`PendingSync`] makes them durable, and nothing may be acked before it
    /// succeeded. Syncs must run in the order of their writes.
    ///
    /// # Errors
    ///
    /// A failed write (a full disk, a file size limit, a failing device): the segment is cut back
    /// to its last frame, so that the next write does not land behind a partial frame (recovery
    /// cuts the log at the first torn frame, and would drop what follows, acked or not).
    /// [`StoreError::Broken`] once a sync failed or a cut back failed: every write is refused
    /// until the store is opened again, whose recovery keeps every intact frame.
    pub fn write(&mut self, records: &[&Record]) -> Result<PendingSync, StoreError> {
        if let Some(detail) = self.broken.get() {
            return Err(StoreError::Broken {
                path: self.segment_path.clone(),
                detail: detail.clone(),
            });
        }
        if records.is_empty() {
            return Ok(PendingSync::new(|| Ok(())));
        }
        if records.iter().any(|record| record.id.is_empty()) {
            return Err(StoreError::EmptyId);
        }
        if self.segment_len >= self.options.segment_bytes {
            self.roll()?;
        }
        let frames: usize = records
            .iter()
            .map(|record| frame::encoded_len(record))
            .sum();
        self.buffer.begin(&self.head, frames);
        for record in records {
            frame::encode(record, self.buffer.frames());
        }
        self.buffer.seal();
        debug_assert_eq!(
            self.buffer.head_and_frames().len(),
            self.head.len() + frames
        );
        let cached = match self.write_buffer() {
            Ok(cached) => cached,
            Err(error) => {
                self.cut_back(&error);
                return Err(error);
            }
        };
        let start = self.segment_len;
        self.segment_len += frames as u64;
        self.head.clear();
        self.head.extend_from_slice(self.buffer.next_head());
        Ok(self.sync_of(start, self.segment_len, cached))
    }

    /// Writes the sealed buffer at the segment's end: directly, in whole blocks from the block
    /// the end is in, if it can; else (or if that fails) head and frames, without padding,
    /// through the page cache. Returns true if the page cache holds them.
    fn write_buffer(&mut self) -> Result<bool, StoreError> {
        let block_start = self.segment_len - self.head.len() as u64;
        if let Some(file) = &self.direct {
            match file.write_all_at(self.buffer.blocks(), block_start) {
                Ok(()) => return Ok(false),
                // Out of room: the frames without padding may still fit.
                Err(error) if out_of_room(&error) => {
                    tracing::debug!(%error, "direct write failed; trying through the page cache");
                }
                Err(error) => {
                    tracing::warn!(%error, segment = %self.segment_path.display(), "direct write failed; writing this segment through the page cache");
                    self.direct = None;
                }
            }
        }
        self.segment
            .write_all_at(self.buffer.head_and_frames(), block_start)
            .map_err(io_error("writing", &self.segment_path))?;
        Ok(true)
    }

    /// The `fdatasync` that makes bytes `start..end` of the current segment durable, then, if
    /// they went through the page cache (`cached`), hands their whole pages back to the kernel.
    /// The log is not read on the hot path, so cached pages only crowd out other files; and
    /// writing into recycled pages costs far less CPU than into fresh ones (4-5x less on the VMs
    /// we measure on). The partial last page stays cached (the kernel keeps partial pages).
    ///
    /// A failed `fdatasync` breaks the store: Linux may have marked the unwritten pages clean, so
    /// a later sync could succeed without writing them (PostgreSQL's "fsyncgate"). For the same
    /// reason a sync fails if the store broke before it: the sync that broke it (of a roll or a
    /// cut back, on the same file) may have taken the error that belonged to these pages, since
    /// Linux reports a writeback error once per open file.
    fn sync_of(&self, start: u64, end: u64, cached: bool) -> PendingSync {
        let segment = Arc::clone(&self.segment);
        let checkpoint = Arc::clone(&self.checkpoint);
        let path = self.segment_path.clone();
        let broken = Arc::clone(&self.broken);
        PendingSync::new(move || {
            if let Err(error) = segment.sync_data().map_err(io_error("syncing", &path)) {
                tracing::error!(%error, "sync failed; refusing further writes until restart");
                mark_broken(&broken, error.to_string());
                return Err(error);
            }
            if let Some(detail) = broken.get() {
                return Err(StoreError::Broken {
                    path,
                    detail: detail.clone(),
                });
            }
            checkpoint.record(end);
            if !cached {
                return Ok(());
            }
            let page = page_cache::page_size();
            let (from, upto) = (start / page * page, end / page * page);
            if upto > from {
                page_cache::release(&segment, from, Some(upto - from));
            }
            Ok(())
        })
    }

    /// Undoes whatever part of a failed write reached the segment.
    fn cut_back(&mut self, error: &StoreError) {
        let cut = self
            .segment
            .set_len(self.segment_len)
            .and_then(|()| self.segment.sync_data());
        match cut {
            Ok(()) => {
                tracing::warn!(%error, "write failed; segment cut back to its last written length")
            }
            Err(cut_error) => {
                tracing::error!(%error, %cut_error, "write failed and the segment could not be cut back; refusing further writes");
                mark_broken(
                    &self.broken,
                    format!("{error}; then cutting back: {cut_error}"),
                );
            }
        }
    }

    /// Finishes the current segment (cut to its last frame and synced, so that only the last
    /// segment can ever end torn or padded) and starts the next one.
    fn roll(&mut self) -> Result<(), StoreError> {
        self.segment
            .set_len(self.segment_len)
            .map_err(io_error("finishing", &self.segment_path))?;
        if let Err(error) = self.segment.sync_all() {
            let error = io_error("syncing", &self.segment_path)(error);
            tracing::error!(%error, "sync failed; refusing further writes until restart");
            mark_broken(&self.broken, error.to_string());
            return Err(error);
        }
        let index = self.segment_index + 1;
        let path = segment_path(&self.dir, index);
        let segment = Self::open_segment(&self.dir, &path, true)?;
        let checkpoint = Checkpoint::open(&path, true).map_err(io_error("opening", &path))?;
        self.checkpoint = Arc::new(checkpoint);
        self.direct = self
            .options
            .direct_io
            .then(|| direct::open(&path))
            .flatten();
        self.segment = Arc::new(segment);
        self.segment_index = index;
        self.segment_path = path;
        self.segment_len = 0;
        self.head.clear();
        Ok(())
    }
}

impl RecordStore for Store {
    fn claim_all(&mut self, ids: &[&str]) -> Vec<bool> {
        Store::claim_all(self, ids)
    }

    fn write_batch(&mut self, records: &[&Record]) -> Appended {
        // One write and one fdatasync: the batch is stored whole or not at all.
        match self.write(records) {
            Ok(sync) => Appended::after_sync(records.len(), sync),
            Err(error) => {
                // A broken store claimed nothing (see `claim_all`): nothing to take back.
                if !matches!(error, StoreError::Broken { .. }) {
                    for record in records {
                        self.recent.release(&record.id);
                    }
                }
                Appended::all(records.len(), Outcome::Failed(Arc::new(error)))
            }
        }
    }

    fn dedup_forgotten(&self) -> u64 {
        Store::dedup_forgotten(self)
    }

    fn describe(&self) -> String {
        format!("segment log in {}", self.dir.display())
    }
}

/// Everything a log directory holds, read without modifying it.
#[derive(Debug, Default)]
pub struct Contents {
    /// Every intact record, in log order.
    pub records: Vec<Record>,
    /// Segment files.
    pub segments: usize,
    /// A torn frame that ends the last segment, if any: its offset and reason. A server that
    /// opens the store cuts it off.
    pub torn_tail: Option<(u64, &'static str)>,
}

/// Reads every intact record of the log in `dir`, leaving the files untouched (safe while a
/// server appends).
///
/// # Errors
///
/// I/O failures, and [`StoreError::Corrupt`] if a segment is damaged where a crash cannot have
/// torn it (see `store/recover.rs`).
pub fn read_dir(dir: &Path) -> Result<Contents, StoreError> {
    let found = segments(dir)?;
    let mut contents = Contents {
        segments: found.len(),
        ..Contents::default()
    };
    let count = found.len();
    for (position, (_, path)) in found.iter().enumerate() {
        let last = position + 1 == count;
        let kept = contents.records.len();
        let mut verdict = read_segment(path, last, &mut contents.records)?;
        if last && matches!(verdict, Verdict::Corrupt { .. }) {
            // A server appending while we read can make its last segment look damaged (a later
            // page read after it was written, an earlier one before): read it once more.
            contents.records.truncate(kept);
            verdict = read_segment(path, last, &mut contents.records)?;
        }
        match verdict {
            Verdict::Clean => {}
            Verdict::TornTail { offset, reason } => contents.torn_tail = Some((offset, reason)),
            Verdict::Corrupt {
                offset,
                reason,
                records_after,
            } => {
                return Err(StoreError::Corrupt {
                    path: path.clone(),
                    offset,
                    reason,
                    records_after,
                });
            }
        }
    }
    Ok(contents)
}

/// Reads one segment's intact records into `records` and judges its end.
fn read_segment(path: &Path, last: bool, records: &mut Vec<Record>) -> Result<Verdict, StoreError> {
    // The checkpoint first: read after the bytes, it could be ahead of them.
    let synced = if last { checkpoint::read(path) } else { 0 };
    let bytes = fs::read(path).map_err(io_error("reading", path))?;
    Ok(recover::examine(&bytes, |record| records.push(record)).judge(last, synced))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::store::{Lost, repair_dir};

    #[test]
    fn an_appended_record_reads_back() {
        use crate::ingest::proto::Record;
        use crate::ingest::store::{Store, StoreOptions, read_dir};

        let dir = tempfile::tempdir().unwrap();
        let (mut store, _recovery) = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let record = Record {
            id: "r-1".into(),
            payload: b"hello".to_vec().into(),
            key: None,
        };
        store.append(&[&record]).unwrap();
        assert_eq!(read_dir(dir.path()).unwrap().records, vec![record]);
    }

    fn record(id: &str) -> Record {
        Record {
            id: id.into(),
            payload: vec![1; 100].into(),
            key: None,
        }
    }

    fn options(direct_io: bool) -> StoreOptions {
        StoreOptions {
            direct_io,
            ..StoreOptions::default()
        }
    }

    fn ids(dir: &Path) -> Vec<String> {
        let contents = read_dir(dir).unwrap();
        assert_eq!(contents.torn_tail, None);
        contents.records.into_iter().map(|r| r.id).collect()
    }

    #[test]
    fn a_torn_tail_is_truncated_and_the_intact_records_stay() {
        for direct_io in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let (mut store, _) = Store::open(dir.path(), options(direct_io)).unwrap();
            store.append(&[&record("a"), &record("b")]).unwrap();
            let intact = store.segment_len;
            drop(store);
            // A torn write: half a frame after the intact ones (over any padding).
            let path = segment_path(dir.path(), 0);
            let mut half = Vec::new();
            frame::encode(&record("c"), &mut half);
            half.truncate(half.len() / 2);
            let file = OpenOptions::new().write(true).open(&path).unwrap();
            file.write_all_at(&half, intact).unwrap();
            let file_len = file.metadata().unwrap().len();
            drop(file);
            assert!(read_dir(dir.path()).unwrap().torn_tail.is_some());

            let (mut store, recovery) = Store::open(dir.path(), options(direct_io)).unwrap();
            assert_eq!(recovery.records, 2);
            assert_eq!(recovery.truncated_bytes, file_len - intact);
            assert!(store.contains("a") && store.contains("b") && !store.contains("c"));
            store.append(&[&record("c")]).unwrap();
            assert_eq!(ids(dir.path()), ["a", "b", "c"]);
        }
    }

    /// A log of `count` acked records with ids of one length (so frames of one length), written
    /// in batches of 10; returns the length of each frame.
    fn acked_log(dir: &Path, direct_io: bool, count: usize) -> usize {
        let (mut store, _) = Store::open(dir, options(direct_io)).unwrap();
        let all: Vec<Record> = (0..count).map(|n| record(&format!("r{n:06}"))).collect();
        for batch in all.chunks(10) {
            store.append(&batch.iter().collect::<Vec<_>>()).unwrap();
        }
        frame::encoded_len(&all[0])
    }

    fn flip(path: &Path, offset: usize) {
        let mut bytes = fs::read(path).unwrap();
        bytes[offset] ^= 0x10;
        fs::write(path, bytes).unwrap();
    }

    #[test]
    fn a_flipped_byte_in_acked_data_is_refused_and_repair_keeps_every_intact_record() {
        for direct_io in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let frame_len = acked_log(dir.path(), direct_io, 1000);
            let path = segment_path(dir.path(), 0);
            // In the payload of record 500.
            flip(&path, 500 * frame_len + 60);
            let file_len = fs::metadata(&path).unwrap().len();
            let damaged_at = (500 * frame_len) as u64;
            for refused in [
                Store::open(dir.path(), options(direct_io)).map(|_| ()),
                read_dir(dir.path()).map(|_| ()),
            ] {
                assert!(
                    matches!(
                        &refused,
                        Err(StoreError::Corrupt { offset, records_after: 500, .. }) if *offset == damaged_at
                    ),
                    "{refused:?}"
                );
            }
            assert_eq!(fs::metadata(&path).unwrap().len(), file_len, "nothing cut");

            let report = repair_dir(dir.path()).unwrap();
            let [repaired] = &report.repaired[..] else {
                panic!("{report:?}")
            };
            assert_eq!(repaired.offset, damaged_at);
            assert_eq!(repaired.kept.len(), 499);
            assert!(
                matches!(&repaired.lost[..], [Lost::Record { id, .. }] if id == "r000500"),
                "{:?}",
                repaired.lost
            );
            let moved = fs::read(repaired.moved_to.as_ref().unwrap()).unwrap();
            assert_eq!(moved.len() as u64, file_len - damaged_at);
            let expected: Vec<String> = (0..1000)
                .filter(|&n| n != 500)
                .map(|n| format!("r{n:06}"))
                .collect();
            assert_eq!(ids(dir.path()), expected);
            let (mut store, recovery) = Store::open(dir.path(), options(direct_io)).unwrap();
            assert_eq!(recovery.records, 999);
            store.append(&[&record("r000500")]).unwrap();
            drop(store);
            assert_eq!(ids(dir.path()).len(), 1000);
            assert!(repair_dir(dir.path()).unwrap().repaired.is_empty());
        }
    }

    #[test]
    fn damage_to_the_last_acked_frame_is_corruption_not_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let frame_len = acked_log(dir.path(), false, 20);
        let path = segment_path(dir.path(), 0);
        // Nothing follows the last frame, but the checkpoint says it was synced.
        flip(&path, 19 * frame_len + 60);
        let refused = Store::open(dir.path(), options(false));
        assert!(
            matches!(
                &refused,
                Err(StoreError::Corrupt { reason: "damage before the synced length", offset, .. })
                    if *offset == (19 * frame_len) as u64
            ),
            "{refused:?}"
        );
        // Cut short by hand: the acked bytes are missing.
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..10 * frame_len]).unwrap();
        assert!(matches!(
            read_dir(dir.path()),
            Err(StoreError::Corrupt { offset, .. }) if offset == (10 * frame_len) as u64
        ));
        let report = repair_dir(dir.path()).unwrap();
        assert!(report.repaired[0].moved_to.is_none());
        assert_eq!(ids(dir.path()).len(), 10);
    }

    #[test]
    fn direct_writes_pad_to_blocks_and_the_next_write_continues_at_the_last_frame() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 0);
        let mut written = Vec::new();
        // Alternate direct and buffered writes across reopenings: each continues where the
        // last intact frame ends, over the padding.
        for (round, direct_io) in [true, true, false, true, false].into_iter().enumerate() {
            let (mut store, recovery) = Store::open(dir.path(), options(direct_io)).unwrap();
            assert_eq!(recovery.records, written.len() as u64);
            assert_eq!(recovery.truncated_bytes, 0);
            for batch in 0..3 {
                let batch: Vec<Record> = (0..7)
                    .map(|index| record(&format!("r{round}-{batch}-{index}")))
                    .collect();
                store.append(&batch.iter().collect::<Vec<_>>()).unwrap();
                written.extend(batch.into_iter().map(|r| r.id));
                let file_len = fs::metadata(&path).unwrap().len();
                assert!(file_len >= store.segment_len);
                if store.direct.is_some() {
                    assert_eq!(file_len % direct::BLOCK as u64, 0, "whole blocks");
                }
            }
            drop(store);
            assert_eq!(ids(dir.path()), written);
        }
    }

    #[cfg(unix)]
    #[test]
    fn new_directories_and_segments_are_created_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data").join("ingest");
        let options = StoreOptions {
            segment_bytes: 1,
            ..StoreOptions::default()
        };
        let (mut store, _) = Store::open(&dir, options).unwrap();
        // The second append rolls: a segment created by a roll is owner-only too.
        store.append(&[&record("a")]).unwrap();
        store.append(&[&record("b")]).unwrap();
        drop(store);
        assert_eq!(mode(&root.path().join("data")), 0o700);
        assert_eq!(mode(&dir), 0o700);
        for index in 0..2 {
            assert_eq!(mode(&segment_path(&dir, index)), 0o600, "segment {index}");
        }
    }

    #[test]
    fn a_roll_takes_an_empty_next_segment_and_refuses_one_that_holds_data() {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            segment_bytes: 1,
            ..StoreOptions::default()
        };
        let (mut store, _) = Store::open(dir.path(), options).unwrap();
        store.append(&[&record("a")]).unwrap();
        // As a roll that failed after creating the file would leave it.
        File::create(segment_path(dir.path(), 1)).unwrap();
        store.append(&[&record("b")]).unwrap();
        fs::write(segment_path(dir.path(), 2), b"not ours").unwrap();
        let refused = store.append(&[&record("c")]);
        assert!(
            matches!(&refused, Err(StoreError::Io { error, .. }) if error.kind() == io::ErrorKind::AlreadyExists),
            "{refused:?}"
        );
        assert_eq!(fs::read(segment_path(dir.path(), 2)).unwrap(), b"not ours");
        // Writes resume once the way is clear, without a restart.
        fs::remove_file(segment_path(dir.path(), 2)).unwrap();
        store.append(&[&record("c")]).unwrap();
        drop(store);
        assert_eq!(ids(dir.path()), ["a", "b", "c"]);
    }

    #[test]
    fn a_pending_sync_fails_once_the_store_broke_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let pending = store.write(&[&record("a")]).unwrap();
        // As a failed sync of a roll or a cut back would leave it: that sync may have taken the
        // writeback error of these very pages.
        mark_broken(&store.broken, "an earlier sync failed".into());
        assert!(matches!(pending.run(), Err(StoreError::Broken { .. })));
        assert!(matches!(
            store.append(&[&record("b")]),
            Err(StoreError::Broken { .. })
        ));
    }

    #[test]
    fn a_record_without_an_id_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let empty = Record::default();
        assert!(matches!(
            store.append(&[&record("a"), &empty]),
            Err(StoreError::EmptyId)
        ));
        store.append(&[&record("b")]).unwrap();
        assert_eq!(ids(dir.path()), ["b"]);
    }

    #[test]
    fn segments_roll_and_read_back_in_order() {
        for direct_io in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let options = StoreOptions {
                segment_bytes: 200,
                dedup_window: 10,
                direct_io,
            };
            let (mut store, _) = Store::open(dir.path(), options).unwrap();
            for index in 0..10 {
                store.append(&[&record(&format!("r{index}"))]).unwrap();
            }
            drop(store);
            let contents = read_dir(dir.path()).unwrap();
            assert!(contents.segments > 1);
            assert_eq!(contents.records.len(), 10);
            // Every finished segment ends at its last frame: no padding, nothing torn.
            for (_, path) in &segments(dir.path()).unwrap()[..contents.segments - 1] {
                let bytes = fs::read(path).unwrap();
                let examination = recover::examine(&bytes, |_| {});
                assert_eq!(examination.end, bytes.len() as u64);
                assert!(examination.damage.is_none());
            }
            let (store, recovery) = Store::open(dir.path(), options).unwrap();
            assert_eq!(recovery.records, 10);
            assert!(store.contains("r9"));
        }
    }
}
