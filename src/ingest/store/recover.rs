//! Reading a segment back and judging what ends its intact frames: the clean end, a torn tail
//! that may be cut, or corruption that must not be.
//!
//! A crash can only tear the end of the last segment: writes are appended in order, a finished
//! segment is synced before the next one starts, and a killed process leaves a prefix of its
//! last write. So the first bad frame of a segment is a torn tail only if
//! - it is in the last segment,
//! - no valid frame follows it anywhere in the segment (a torn write leaves nothing intact
//!   behind its first bad byte, while a flipped byte in the middle leaves every later frame
//!   intact), and
//! - it starts at or after the segment's synced length (`store/checkpoint.rs`): bytes before it
//!   were made durable by an `fdatasync`, so records in them may have been acked.
//!
//! Anything else is corruption: the store refuses to open, naming the segment, the offset and
//! the records found after it, and `sluicegate ingest repair` moves the damage aside
//! (`store/repair.rs`). Scanning past the damage costs nothing on the write path; the checkpoint
//! covers what scanning cannot see, damage with no frame after it (see `docs/ingest-recovery.md`).
//!
//! Finding frames past the damage means trying every byte offset, since the damage may have hit a
//! length field. A candidate must look like a frame before its checksum is computed (a length in
//! range, the body starting with the record's `id` field), so scanning random bytes costs about a
//! byte comparison per offset.

use prost::Message;

use super::frame::{self, Decoded, HEADER_LEN, MAX_BODY_LEN};
use crate::ingest::proto::Record;

/// The first byte of every stored record's body: field 1 (`id`), length-delimited. Every stored
/// record has a non-empty id, and prost writes fields in order, so the id comes first.
const ID_TAG: u8 = 0x0A;

/// Something after the damage that could not be kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lost {
    /// A frame whose checksum fails but whose body still decodes: the record is damaged, its id
    /// is known (as far as the damage spared it).
    Record {
        /// Where its frame starts.
        offset: u64,
        /// Bytes of the frame.
        len: u64,
        /// The id its body holds.
        id: String,
    },
    /// Bytes that hold no recognisable frame.
    Bytes {
        /// Where they start.
        offset: u64,
        /// How many.
        len: u64,
    },
}

/// The first damage of a segment and what follows it.
#[derive(Debug, Clone, Default)]
pub struct Damage {
    /// Where the first bad frame starts (the intact frames end here).
    pub offset: u64,
    /// What is wrong with it.
    pub reason: &'static str,
    /// Intact frames after the damage, in order, with their offsets.
    pub later: Vec<(u64, Record)>,
    /// What after the damage could not be kept, in order.
    pub lost: Vec<Lost>,
}

impl Damage {
    /// Records found after the damage, intact or with a readable id: as many as can be counted.
    pub fn records_after(&self) -> u64 {
        let damaged = self
            .lost
            .iter()
            .filter(|lost| matches!(lost, Lost::Record { .. }))
            .count();
        (self.later.len() + damaged) as u64
    }
}

/// What reading one segment found.
#[derive(Debug, Clone, Default)]
pub struct Examination {
    /// Where the intact frames at the start end.
    pub end: u64,
    /// The damage that ends them, if it is not the clean end (or zero padding).
    pub damage: Option<Damage>,
}

/// What the end of a segment is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The intact frames end at the end of the file or at zero padding.
    Clean,
    /// The unsynced end of the last segment, torn by a crash: never acked, may be cut.
    TornTail {
        /// Where it starts.
        offset: u64,
        /// What is wrong with its first frame.
        reason: &'static str,
    },
    /// Damage that is not a torn tail.
    Corrupt {
        /// Where the intact frames end.
        offset: u64,
        /// Why this is corruption.
        reason: &'static str,
        /// Records found after it (see [`Damage::records_after`]).
        records_after: u64,
    },
}

/// Reads the frames of one segment's `bytes`, handing each intact record before any damage to
/// `each`, and, if damage ends them, reads on past it.
pub fn examine(bytes: &[u8], mut each: impl FnMut(Record)) -> Examination {
    let mut end = 0;
    loop {
        match frame::decode(&bytes[end..]) {
            Decoded::Record { record, len } => {
                each(record);
                end += len;
            }
            Decoded::End => {
                return Examination {
                    end: end as u64,
                    damage: None,
                };
            }
            Decoded::Torn(reason) => {
                let mut damage = Damage {
                    offset: end as u64,
                    reason,
                    ..Damage::default()
                };
                read_past(bytes, end, &mut damage);
                return Examination {
                    end: end as u64,
                    damage: Some(damage),
                };
            }
        }
    }
}

impl Examination {
    /// Judges the end of a segment: `last` if it is the last segment of the log, `synced` its
    /// synced length as far as known (0 if unknown).
    pub fn judge(&self, last: bool, synced: u64) -> Verdict {
        let Some(damage) = &self.damage else {
            return if last && self.end < synced {
                Verdict::Corrupt {
                    offset: self.end,
                    reason: "the segment ends before its synced length: acked bytes are missing",
                    records_after: 0,
                }
            } else {
                Verdict::Clean
            };
        };
        let reason = if !last {
            "damage in a finished segment"
        } else if !damage.later.is_empty() {
            "damage followed by intact frames"
        } else if damage.offset < synced {
            "damage before the synced length"
        } else {
            return Verdict::TornTail {
                offset: damage.offset,
                reason: damage.reason,
            };
        };
        Verdict::Corrupt {
            offset: damage.offset,
            reason,
            records_after: damage.records_after(),
        }
    }
}

/// Reads `bytes` from the bad frame at `start` to the end: every intact frame into
/// `damage.later`, everything else into `damage.lost`.
fn read_past(bytes: &[u8], start: usize, damage: &mut Damage) {
    let mut at = start;
    while at < bytes.len() {
        match frame::decode(&bytes[at..]) {
            Decoded::Record { record, len } => {
                damage.later.push((at as u64, record));
                at += len;
            }
            Decoded::End => return,
            Decoded::Torn(_) => {
                let next = next_frame(bytes, at + 1);
                // Where the unreadable part ends: the next frame, or the last non-zero byte.
                let upto = match &next {
                    Some((offset, ..)) => *offset,
                    None => bytes
                        .iter()
                        .rposition(|&byte| byte != 0)
                        .map_or(at, |i| i + 1),
                };
                let mut from = at;
                if let Some((id, len)) = salvage(&bytes[at..]).filter(|(_, len)| at + len <= upto) {
                    damage.lost.push(Lost::Record {
                        offset: at as u64,
                        len: len as u64,
                        id,
                    });
                    from = at + len;
                }
                if upto > from {
                    damage.lost.push(Lost::Bytes {
                        offset: from as u64,
                        len: (upto - from) as u64,
                    });
                }
                let Some((offset, record, len)) = next else {
                    return;
                };
                damage.later.push((offset as u64, record));
                at = offset + len;
            }
        }
    }
}

/// The first intact frame starting at or after `from`: its offset, record and length.
pub fn next_frame(bytes: &[u8], from: usize) -> Option<(usize, Record, usize)> {
    let last_start = bytes.len().checked_sub(HEADER_LEN + 2)?;
    (from..=last_start).find_map(|offset| {
        let candidate = &bytes[offset..];
        if !looks_like_a_frame(candidate) {
            return None;
        }
        match frame::decode(candidate) {
            Decoded::Record { record, len } => Some((offset, record, len)),
            _ => None,
        }
    })
}

/// The length field and the first bytes of the body of `bytes` could start a frame: checked
/// before the checksum, which would cost a pass over the claimed body at every offset.
fn looks_like_a_frame(bytes: &[u8]) -> bool {
    let Some(body_len) = body_len(bytes) else {
        return false;
    };
    let body = &bytes[HEADER_LEN..];
    if body_len < 2 || body.len() < body_len || body[0] != ID_TAG {
        return false;
    }
    // The id's length: a varint of one or two bytes (ids are short), at least 1.
    let (id_len, varint) = if body[1] < 0x80 {
        (usize::from(body[1]), 1)
    } else if body_len > 2 && body[2] < 0x80 {
        (usize::from(body[1] & 0x7f) | usize::from(body[2]) << 7, 2)
    } else {
        return false;
    };
    id_len > 0 && 1 + varint + id_len <= body_len
}

/// The body length a frame header at the start of `bytes` claims, if it is in range.
fn body_len(bytes: &[u8]) -> Option<usize> {
    let header = bytes.first_chunk::<HEADER_LEN>()?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    (1..=MAX_BODY_LEN).contains(&len).then_some(len)
}

/// The id of a damaged frame at the start of `bytes` whose body still decodes (the damage hit
/// the payload or the checksum), and the frame's length.
fn salvage(bytes: &[u8]) -> Option<(String, usize)> {
    let len = body_len(bytes)?;
    let body = bytes.get(HEADER_LEN..HEADER_LEN + len)?;
    let record = Record::decode(body).ok()?;
    (!record.id.is_empty()).then_some((record.id, HEADER_LEN + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> Record {
        Record {
            id: id.into(),
            payload: vec![0x0A; 300].into(),
            key: None,
        }
    }

    /// Frames of `ids`, and where each starts.
    fn log(ids: &[&str]) -> (Vec<u8>, Vec<usize>) {
        let mut bytes = Vec::new();
        let mut starts = Vec::new();
        for id in ids {
            starts.push(bytes.len());
            frame::encode(&record(id), &mut bytes);
        }
        (bytes, starts)
    }

    fn ids(later: &[(u64, Record)]) -> Vec<&str> {
        later.iter().map(|(_, record)| record.id.as_str()).collect()
    }

    #[test]
    fn a_clean_log_and_its_padding_end_clean() {
        let (mut bytes, _) = log(&["a", "b"]);
        let len = bytes.len() as u64;
        bytes.resize(4096, 0);
        let mut seen = Vec::new();
        let examination = examine(&bytes, |record| seen.push(record.id));
        assert_eq!(seen, ["a", "b"]);
        assert_eq!(examination.end, len);
        assert_eq!(examination.judge(true, len), Verdict::Clean);
        assert_eq!(examination.judge(true, 0), Verdict::Clean);
    }

    #[test]
    fn a_log_shorter_than_its_synced_length_is_corrupt() {
        let (bytes, starts) = log(&["a", "b", "c"]);
        let examination = examine(&bytes[..starts[2]], |_| {});
        assert!(matches!(
            examination.judge(true, bytes.len() as u64),
            Verdict::Corrupt { offset, .. } if offset == starts[2] as u64
        ));
    }

    #[test]
    fn a_torn_last_frame_is_a_torn_tail_only_after_the_synced_length() {
        let (bytes, starts) = log(&["a", "b", "c"]);
        let torn = &bytes[..bytes.len() - 5];
        let examination = examine(torn, |_| {});
        let damage = examination.damage.as_ref().unwrap();
        assert_eq!(damage.offset, starts[2] as u64);
        assert!(damage.later.is_empty());
        assert_eq!(
            examination.judge(true, starts[2] as u64),
            Verdict::TornTail {
                offset: starts[2] as u64,
                reason: "body cut short"
            }
        );
        assert!(matches!(
            examination.judge(true, bytes.len() as u64),
            Verdict::Corrupt {
                reason: "damage before the synced length",
                ..
            }
        ));
        assert!(matches!(
            examination.judge(false, 0),
            Verdict::Corrupt { .. }
        ));
    }

    #[test]
    fn a_flipped_payload_byte_loses_one_known_id_and_keeps_the_rest() {
        let (mut bytes, starts) = log(&["a", "b", "c", "d"]);
        bytes[starts[1] + 100] ^= 0x40;
        let examination = examine(&bytes, |_| {});
        let damage = examination.damage.as_ref().unwrap();
        assert_eq!(damage.offset, starts[1] as u64);
        assert_eq!(ids(&damage.later), ["c", "d"]);
        assert_eq!(damage.later[0].0, starts[2] as u64);
        assert_eq!(
            damage.lost,
            [Lost::Record {
                offset: starts[1] as u64,
                len: (starts[2] - starts[1]) as u64,
                id: "b".into()
            }]
        );
        assert_eq!(damage.records_after(), 3);
        assert!(matches!(
            examination.judge(true, 0),
            Verdict::Corrupt {
                reason: "damage followed by intact frames",
                records_after: 3,
                ..
            }
        ));
    }

    #[test]
    fn a_flipped_length_byte_is_scanned_past() {
        let (mut bytes, starts) = log(&["a", "b", "c", "d"]);
        bytes[starts[1] + 3] = 0x7f;
        let examination = examine(&bytes, |_| {});
        let damage = examination.damage.unwrap();
        assert_eq!(ids(&damage.later), ["c", "d"]);
        assert_eq!(
            damage.lost,
            [Lost::Bytes {
                offset: starts[1] as u64,
                len: (starts[2] - starts[1]) as u64
            }]
        );
    }

    #[test]
    fn zeros_in_the_middle_are_damage_and_several_damages_are_all_read_past() {
        let (mut bytes, starts) = log(&["a", "b", "c", "d", "e"]);
        bytes[starts[1]..starts[2]].fill(0);
        bytes[starts[3] + 50] ^= 1;
        let examination = examine(&bytes, |_| {});
        let damage = examination.damage.unwrap();
        assert_eq!(damage.offset, starts[1] as u64);
        assert_eq!(ids(&damage.later), ["c", "e"]);
        assert_eq!(damage.lost.len(), 2);
        assert!(matches!(&damage.lost[1], Lost::Record { id, .. } if id == "d"));
    }

    #[test]
    fn a_scan_over_garbage_finds_nothing_and_ends_at_the_last_non_zero_byte() {
        let (mut bytes, starts) = log(&["a"]);
        let garbage: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        bytes.extend_from_slice(&garbage);
        bytes.resize(bytes.len() + 100, 0);
        let damage = examine(&bytes, |_| {}).damage.unwrap();
        assert!(damage.later.is_empty());
        let end = starts[0] + frame::encoded_len(&record("a"));
        assert_eq!(
            damage.lost,
            [Lost::Bytes {
                offset: end as u64,
                len: bytes.iter().rposition(|&b| b != 0).unwrap() as u64 + 1 - end as u64
            }]
        );
    }
}
