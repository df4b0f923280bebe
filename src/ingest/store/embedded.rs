//! The durable embedded store: an append-only log of segment files.
//!
//! Each record is one frame (`[length][CRC-32][protobuf body]`, see [`frame`]). A batch of
//! records is written with one `write` and made durable with one `fdatasync` before anyone is
//! told it is stored. A crash can leave only the tail of the last segment torn; [`Store::open`]
//! truncates it, and since nothing in a torn tail was ever acked, nothing acked is lost.
//!
//! Why a log and not `redb`: the workload is append-only with no reads on the hot path, so a
//! B-tree's page writes and copy-on-write commits would cost more per batch than one sequential
//! write and one `fdatasync`; the framing and recovery fit in a page of code that the crash test
//! exercises, and `crc32fast` is the only dependency.
//!
//! ```
//! use sluicegate::ingest::proto::Record;
//! use sluicegate::ingest::store::{read_dir, Store, StoreOptions};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let (mut store, _recovery) = Store::open(dir.path(), StoreOptions::default()).unwrap();
//! let record = Record { id: "r-1".into(), payload: b"hello".to_vec().into(), key: None };
//! store.append(&[&record]).unwrap();
//! assert_eq!(read_dir(dir.path()).unwrap().records, vec![record]);
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::{Appended, Outcome, PendingSync, RecentIds, RecordStore, StoreError};
use super::{frame, page_cache};
use crate::ingest::proto::Record;

fn io_error<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        what,
        path: path.to_owned(),
        source,
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
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            segment_bytes: 64 << 20,
            dedup_window: 100_000,
        }
    }
}

/// What [`Store::open`] found.
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
    segment_len: u64,
    /// Set when a sync failed, or a failed write could not be cut back: every later write is
    /// refused. Shared with the pending syncs, which set it.
    broken: Arc<OnceLock<String>>,
    recent: RecentIds,
    buffer: Vec<u8>,
}

fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("segment-{index:08}.log"))
}

/// The segment files of `dir`, in order.
fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StoreError> {
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

/// The intact records at the start of one segment's bytes, and where and why they stop if a torn
/// frame follows.
fn scan(bytes: &[u8], mut each: impl FnMut(Record)) -> Option<(u64, &'static str)> {
    let mut offset = 0;
    loop {
        match frame::decode(&bytes[offset..]) {
            frame::Decoded::Record { record, len } => {
                each(record);
                offset += len;
            }
            frame::Decoded::End => return None,
            frame::Decoded::Torn(reason) => return Some((offset as u64, reason)),
        }
    }
}

/// Records why the store refuses writes from now on; the first reason stays.
fn mark_broken(broken: &OnceLock<String>, detail: String) {
    if broken.set(detail).is_err() {
        tracing::debug!("the store was already refusing writes");
    }
}

/// Syncs a directory so that a file created in it survives a crash.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(io_error("syncing directory", dir))
}

impl Store {
    /// Opens (or creates) the log in `dir`, truncating a torn tail of the last segment and
    /// filling the dedup window with the most recently stored ids.
    ///
    /// # Errors
    ///
    /// I/O failures, and [`StoreError::Corrupt`] if a segment other than the last is damaged.
    pub fn open(dir: &Path, options: StoreOptions) -> Result<(Store, Recovery), StoreError> {
        fs::create_dir_all(dir).map_err(io_error("creating", dir))?;
        let mut recent = RecentIds::new(options.dedup_window);
        let mut recovery = Recovery::default();
        let found = segments(dir)?;
        recovery.segments = found.len();
        let last_index = found.last().map(|(index, _)| *index);
        for (index, path) in &found {
            let bytes = fs::read(path).map_err(io_error("reading", path))?;
            let torn = scan(&bytes, |record| {
                recovery.records += 1;
                recent.remember(&record.id);
            });
            let Some((offset, reason)) = torn else {
                continue;
            };
            if Some(*index) != last_index {
                return Err(StoreError::Corrupt {
                    path: path.clone(),
                    offset,
                    reason,
                });
            }
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
        let (segment, segment_len) = Self::open_segment(dir, &path)?;
        let store = Store {
            dir: dir.to_owned(),
            options,
            segment: Arc::new(segment),
            segment_path: path,
            segment_index,
            segment_len,
            broken: Arc::default(),
            recent,
            buffer: Vec::new(),
        };
        Ok((store, recovery))
    }

    fn open_segment(dir: &Path, path: &Path) -> Result<(File, u64), StoreError> {
        let existed = path.exists();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io_error("opening", path))?;
        let len = file.metadata().map_err(io_error("reading", path))?.len();
        if !existed {
            sync_dir(dir)?;
        }
        Ok((file, len))
    }

    /// True if a record with this id was written (or claimed) recently, within the dedup window,
    /// and the store is intact.
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
    /// to where it was, so that the next write does not land behind a partial frame (recovery
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
        if self.segment_len >= self.options.segment_bytes {
            self.roll()?;
        }
        self.buffer.clear();
        for record in records {
            frame::encode(record, &mut self.buffer);
        }
        let written = (&*self.segment)
            .write_all(&self.buffer)
            .map_err(io_error("writing", &self.segment_path));
        if let Err(error) = written {
            self.cut_back(&error);
            return Err(error);
        }
        let start = self.segment_len;
        self.segment_len += self.buffer.len() as u64;
        // Do not keep a huge buffer around after one huge batch.
        if self.buffer.capacity() > 8 << 20 {
            self.buffer = Vec::new();
        }
        Ok(self.sync_of(start, self.segment_len))
    }

    /// The `fdatasync` that makes bytes `start..end` of the current segment durable, then hands
    /// their whole pages back to the kernel. The log is not read on the hot path, so cached pages
    /// only crowd out other files; and writing into recycled pages costs far less CPU than into
    /// fresh ones (4-5x less on the VMs we measure on). The partial last page stays cached (the
    /// kernel keeps partial pages), so the next write does not read it back from disk.
    ///
    /// A failed `fdatasync` breaks the store: Linux may have marked the unwritten pages clean, so
    /// a later sync could succeed without writing them (PostgreSQL's "fsyncgate").
    fn sync_of(&self, start: u64, end: u64) -> PendingSync {
        let segment = Arc::clone(&self.segment);
        let path = self.segment_path.clone();
        let broken = Arc::clone(&self.broken);
        PendingSync::new(move || {
            if let Err(error) = segment.sync_data().map_err(io_error("syncing", &path)) {
                tracing::error!(%error, "sync failed; refusing further writes until restart");
                mark_broken(&broken, error.to_string());
                return Err(error);
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

    fn roll(&mut self) -> Result<(), StoreError> {
        self.segment_index += 1;
        let path = segment_path(&self.dir, self.segment_index);
        let (segment, len) = Self::open_segment(&self.dir, &path)?;
        self.segment = Arc::new(segment);
        self.segment_path = path;
        self.segment_len = len;
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
/// I/O failures, and [`StoreError::Corrupt`] if a segment other than the last is damaged.
pub fn read_dir(dir: &Path) -> Result<Contents, StoreError> {
    let found = segments(dir)?;
    let mut contents = Contents {
        segments: found.len(),
        ..Contents::default()
    };
    let count = found.len();
    for (position, (_, path)) in found.iter().enumerate() {
        let bytes = fs::read(path).map_err(io_error("reading", path))?;
        let torn = scan(&bytes, |record| contents.records.push(record));
        if let Some((offset, reason)) = torn {
            if position + 1 != count {
                return Err(StoreError::Corrupt {
                    path: path.clone(),
                    offset,
                    reason,
                });
            }
            contents.torn_tail = Some((offset, reason));
        }
    }
    Ok(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> Record {
        Record {
            id: id.into(),
            payload: vec![1; 100].into(),
            key: None,
        }
    }

    #[test]
    fn a_torn_tail_is_truncated_and_the_intact_records_stay() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = Store::open(dir.path(), StoreOptions::default()).unwrap();
        store.append(&[&record("a"), &record("b")]).unwrap();
        drop(store);
        // A torn write: half a frame at the end.
        let path = segment_path(dir.path(), 0);
        let mut half = Vec::new();
        frame::encode(&record("c"), &mut half);
        half.truncate(half.len() / 2);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&half).unwrap();
        drop(file);
        assert!(read_dir(dir.path()).unwrap().torn_tail.is_some());

        let (mut store, recovery) = Store::open(dir.path(), StoreOptions::default()).unwrap();
        assert_eq!(recovery.records, 2);
        assert_eq!(recovery.truncated_bytes, half.len() as u64);
        assert!(store.contains("a") && store.contains("b") && !store.contains("c"));
        store.append(&[&record("c")]).unwrap();
        let contents = read_dir(dir.path()).unwrap();
        assert_eq!(contents.torn_tail, None);
        let ids: Vec<_> = contents.records.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
    }

    #[test]
    fn segments_roll_and_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            segment_bytes: 200,
            dedup_window: 10,
        };
        let (mut store, _) = Store::open(dir.path(), options).unwrap();
        for index in 0..10 {
            store.append(&[&record(&format!("r{index}"))]).unwrap();
        }
        drop(store);
        let contents = read_dir(dir.path()).unwrap();
        assert!(contents.segments > 1);
        assert_eq!(contents.records.len(), 10);
        let (store, recovery) = Store::open(dir.path(), options).unwrap();
        assert_eq!(recovery.records, 10);
        assert!(store.contains("r9"));
    }
}
