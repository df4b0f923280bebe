//! Any bytes as an `IngestRequest` on the wire: decoding never panics, validation accepts exactly
//! the records with an id of 1..=256 bytes, and every accepted record survives the store's frame
//! encoding unchanged (a record the server acks is one it can read back).
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use sluicegate::ingest::proto::IngestRequest;
use sluicegate::internals::{Decoded, HEADER_LEN, MAX_ID_BYTES, decode, encode, validate};

fuzz_target!(|data: &[u8]| {
    let Ok(request) = IngestRequest::decode(data) else {
        return;
    };
    for record in &request.records {
        let valid = !record.id.is_empty() && record.id.len() <= MAX_ID_BYTES;
        match validate(record) {
            Ok(()) => assert!(valid, "accepted an id of {} bytes", record.id.len()),
            Err(detail) => {
                assert!(!valid, "refused a good record: {detail}");
                assert!(!detail.is_empty(), "a refusal says why");
                continue;
            }
        }
        let mut frame = Vec::new();
        encode(record, &mut frame);
        assert_eq!(frame.len(), HEADER_LEN + record.encoded_len());
        match decode(&frame) {
            Decoded::Record { record: back, len } => {
                assert_eq!(len, frame.len());
                assert_eq!(&back, record, "the stored frame reads back as the record");
            }
            other => panic!("an accepted record's frame does not decode: {other:?}"),
        }
    }
});
