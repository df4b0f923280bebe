//! Any file contents as a segment of the embedded store, as the last segment (where a torn tail
//! may be cut) or as a closed one (where nothing may be). Frame decoding, `read_dir` and the
//! recovery in `Store::open` never panic; no record whose CRC fails is ever returned; and
//! recovery never cuts before the last valid frame: the records of the intact prefix always stay,
//! and when a valid frame follows the damage, recovery refuses or keeps those bytes.
#![no_main]

use std::fs;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sluicegate::ingest::proto::Record;
use sluicegate::ingest::read_dir;
use sluicegate::internals::{Decoded, HEADER_LEN, MAX_BODY_LEN, Store, StoreOptions, decode};

/// Checks one `decode` answer against the bytes, independently of the codec: a frame is a length,
/// the CRC-32 of the body, and the body.
fn checked_decode(bytes: &[u8]) -> Decoded {
    let decoded = decode(bytes);
    if let Decoded::Record { len, .. } = &decoded {
        let len = *len;
        assert!(
            len > HEADER_LEN && len <= bytes.len(),
            "frame length {len} of {}",
            bytes.len()
        );
        let body_len = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
        assert_eq!(body_len, len - HEADER_LEN);
        assert!(body_len <= MAX_BODY_LEN);
        assert_eq!(
            crc32fast::hash(&bytes[HEADER_LEN..len]),
            crc,
            "a record whose CRC fails"
        );
    }
    decoded
}

/// The records of the intact prefix, where it ends, and whether damage (rather than the end or
/// zero padding) follows it.
fn intact_prefix(bytes: &[u8]) -> (Vec<Record>, usize, bool) {
    let (mut records, mut end) = (Vec::new(), 0);
    loop {
        match checked_decode(&bytes[end..]) {
            Decoded::Record { record, len } => {
                records.push(record);
                end += len;
            }
            Decoded::End => return (records, end, false),
            Decoded::Torn(_) => return (records, end, true),
        }
    }
}

/// The end of the last frame that decodes intact at some offset after `damage`, if any.
fn last_valid_frame_after(bytes: &[u8], damage: usize) -> Option<usize> {
    (damage + 1..bytes.len().saturating_sub(HEADER_LEN))
        .filter_map(|offset| match checked_decode(&bytes[offset..]) {
            Decoded::Record { len, .. } => Some(offset + len),
            _ => None,
        })
        .max()
}

fn segment(dir: &Path, index: u64) -> std::path::PathBuf {
    dir.join(format!("segment-{index:08}.log"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    let closed = mode & 1 == 1;
    let (prefix, end, damaged) = intact_prefix(bytes);
    let valid_after = damaged
        .then(|| last_valid_frame_after(bytes, end))
        .flatten();

    let dir = tempfile::tempdir().expect("temp dir");
    let path = segment(dir.path(), 0);
    fs::write(&path, bytes).expect("write segment");
    if closed {
        // An empty later segment makes this one closed: every byte of it was synced.
        fs::write(segment(dir.path(), 1), b"").expect("write segment");
    }

    match read_dir(dir.path()) {
        Ok(contents) => {
            assert!(
                !(closed && damaged),
                "damage in a closed segment read as clean"
            );
            assert_eq!(
                contents.records, prefix,
                "read_dir returns exactly the intact prefix"
            );
        }
        Err(error) => assert!(damaged, "refused an intact segment: {error}"),
    }

    let options = StoreOptions {
        direct_io: false,
        ..StoreOptions::default()
    };
    match Store::open(dir.path(), options) {
        Ok((store, recovery)) => {
            drop(store);
            assert!(
                !(closed && damaged),
                "opened over damage in a closed segment"
            );
            let kept = fs::metadata(&path).expect("segment stays").len() as usize;
            assert!(
                kept >= end,
                "recovery cut into the intact prefix: {kept} < {end}"
            );
            if let Some(valid_end) = valid_after {
                assert!(
                    kept >= valid_end,
                    "recovery cut at {kept}, before a valid frame ending at {valid_end}"
                );
            }
            assert!(recovery.records >= prefix.len() as u64);
            let reread = read_dir(dir.path()).expect("a recovered store reads back");
            assert!(
                reread.records.starts_with(&prefix),
                "every record of the intact prefix is still there"
            );
        }
        Err(error) => assert!(damaged, "refused to open an intact segment: {error}"),
    }
    // Recovery never deletes a file.
    assert!(path.exists());
});
