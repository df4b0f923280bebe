//! Inputs the fuzz targets of `fuzz/` found crashing, replayed through the public API. Each test
//! names its target and the invariant the input broke, so that the fix stays fixed.
#![cfg(all(feature = "node", feature = "ingest"))]

use std::time::Duration;

use sluicegate::ingest::proto::Record;
use sluicegate::node::{NodeConfig, run_node};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// `node_input`, from the seed `seed-bad-bytes`: a line that is not UTF-8 ends the node with
/// `reading input: invalid utf-8`, so the next request is never answered.
#[tokio::test(start_paused = true)]
async fn node_input_a_line_of_invalid_utf8_does_not_stop_the_node() {
    let (mut stdin, node_stdin) = tokio::io::duplex(4096);
    let (node_stdout, stdout) = tokio::io::duplex(4096);
    let node = tokio::spawn(run_node(
        BufReader::new(node_stdin),
        node_stdout,
        NodeConfig::default(),
    ));
    stdin
        .write_all(
            b"{\"src\":\"c0\",\"dest\":\"n0\",\"body\":{\"type\":\"init\",\"msg_id\":1,\"node_id\":\"n0\",\"node_ids\":[\"n0\"]}}\n\
              \xff\xfe\n\
              {\"src\":\"c1\",\"dest\":\"n0\",\"body\":{\"type\":\"echo\",\"msg_id\":2,\"echo\":\"after\"}}\n",
        )
        .await
        .unwrap();
    drop(stdin);
    let report = tokio::time::timeout(Duration::from_secs(10), node)
        .await
        .expect("the node ends when its input does")
        .unwrap();
    assert!(report.is_ok(), "the node survives a bad byte: {report:?}");
    let mut lines = BufReader::new(stdout).lines();
    let mut replies = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        replies.push(line);
    }
    assert!(
        replies
            .iter()
            .any(|line| line.contains(r#""echo":"after""#)),
        "the request after the bad line is answered: {replies:?}"
    );
}

/// The frame of `record` as the store writes it: length, CRC-32 of the body, body.
fn frame(record: &Record) -> Vec<u8> {
    use prost::Message;
    let body = record.encode_to_vec();
    let mut frame = (body.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// `store_recovery`, from the seed `seed-flipped-middle`: one flipped byte in the first of three
/// frames of the last segment. The two intact frames after it were synced and acked; recovery
/// called the damage a torn tail and truncated all three.
#[tokio::test]
async fn store_recovery_damage_followed_by_valid_frames_is_refused_not_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    for id in ["r-1", "r-2", "r-3"] {
        bytes.extend(frame(&Record {
            id: id.into(),
            payload: b"payload".to_vec().into(),
            key: None,
        }));
    }
    bytes[12] ^= 0xff;
    let segment = dir.path().join("segment-00000000.log");
    std::fs::write(&segment, &bytes).unwrap();

    assert!(
        sluicegate::ingest::read_dir(dir.path()).is_err(),
        "verify reports corruption, not a torn tail"
    );
    let config = sluicegate::ingest::ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        direct_io: false,
        ..sluicegate::ingest::ServerConfig::new(dir.path())
    };
    let started = sluicegate::ingest::start(config).await;
    assert!(started.is_err(), "the server refuses to start on it");
    assert_eq!(
        std::fs::read(&segment).unwrap(),
        bytes,
        "nothing was cut from the segment"
    );
}
