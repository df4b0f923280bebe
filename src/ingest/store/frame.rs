//! The on-disk framing of one record: `[body length: u32 LE][CRC-32 of body: u32 LE][body]`,
//! where the body is the protobuf encoding of a [`Record`].
//!
//! Zeros after the last frame are padding, not a frame: direct writes end on a block boundary
//! (see `store/direct.rs`). No stored record has an empty body (every one has an id), so
//! a zero length never starts a real frame.

use prost::Message;

use crate::ingest::proto::Record;

/// Bytes before the body of every frame.
pub const HEADER_LEN: usize = 8;

/// The largest body a frame may carry. A length above it can only be garbage from a torn write.
pub const MAX_BODY_LEN: usize = 64 << 20;

/// Bytes the frame of `record` takes.
pub fn encoded_len(record: &Record) -> usize {
    HEADER_LEN + record.encoded_len()
}

/// Appends the frame of `record` to `out`.
pub fn encode(record: &Record, out: &mut Vec<u8>) {
    let body_len = record.encoded_len();
    out.reserve(HEADER_LEN + body_len);
    let start = out.len();
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    // Encoding into a Vec cannot run out of space: it grows.
    record.encode_raw(out);
    let crc = crc32fast::hash(&out[start + HEADER_LEN..]);
    out[start + 4..start + HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
}

/// What the start of `bytes` holds.
#[derive(Debug)]
pub enum Decoded {
    /// A whole, intact frame of `len` bytes.
    Record {
        /// The record.
        record: Record,
        /// Bytes the frame takes, header included.
        len: usize,
    },
    /// Nothing, or only zeros (padding): the clean end.
    End,
    /// A frame cut short, or whose checksum or body does not match: a torn write.
    Torn(&'static str),
}

/// Decodes the frame at the start of `bytes`.
pub fn decode(bytes: &[u8]) -> Decoded {
    // A frame's length is not zero, so this stops within the first four bytes of a frame.
    if bytes.iter().all(|&byte| byte == 0) {
        return Decoded::End;
    }
    let Some((header, rest)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        return Decoded::Torn("header cut short");
    };
    let body_len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if body_len > MAX_BODY_LEN {
        return Decoded::Torn("length out of range");
    }
    if body_len == 0 {
        return Decoded::Torn("data after zero padding");
    }
    let Some(body) = rest.get(..body_len) else {
        return Decoded::Torn("body cut short");
    };
    if crc32fast::hash(body) != crc {
        return Decoded::Torn("checksum mismatch");
    }
    match Record::decode(body) {
        Ok(record) => Decoded::Record {
            record,
            len: HEADER_LEN + body_len,
        },
        Err(_) => Decoded::Torn("body does not decode"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> Record {
        Record {
            id: id.into(),
            payload: vec![7; 10].into(),
            key: Some("k".into()),
        }
    }

    #[test]
    fn a_frame_round_trips() {
        let mut bytes = Vec::new();
        encode(&record("a"), &mut bytes);
        encode(&record("b"), &mut bytes);
        let Decoded::Record { record: first, len } = decode(&bytes) else {
            panic!("first frame")
        };
        assert_eq!(first, record("a"));
        let Decoded::Record { record: second, .. } = decode(&bytes[len..]) else {
            panic!("second frame")
        };
        assert_eq!(second, record("b"));
        assert!(matches!(decode(&bytes[2 * len..]), Decoded::End));
    }

    #[test]
    fn every_cut_of_a_frame_is_torn() {
        let mut bytes = Vec::new();
        encode(&record("a"), &mut bytes);
        for cut in 1..bytes.len() {
            assert!(
                matches!(decode(&bytes[..cut]), Decoded::Torn(_)),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn zeros_after_the_last_frame_are_the_end_and_data_after_them_is_torn() {
        let mut bytes = Vec::new();
        encode(&record("a"), &mut bytes);
        let len = bytes.len();
        bytes.resize(len + 4000, 0);
        assert!(matches!(decode(&bytes[len..]), Decoded::End));
        assert!(matches!(decode(&bytes[len..len + 3]), Decoded::End));
        bytes.push(1);
        assert!(matches!(
            decode(&bytes[len..]),
            Decoded::Torn("data after zero padding")
        ));
    }

    #[test]
    fn a_flipped_bit_is_torn() {
        let mut bytes = Vec::new();
        encode(&record("a"), &mut bytes);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(matches!(decode(&bytes), Decoded::Torn("checksum mismatch")));
    }
}
