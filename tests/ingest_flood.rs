//! A raw HTTP/2 client that ignores its credits and writes one DATA frame per one-record message,
//! as the flood did (a tonic client would coalesce queued messages into large frames):
//! h2's flood guard must not end the connection, and every record is answered exactly once.
#![cfg(feature = "ingest")]

mod ingest_support;

use std::collections::HashMap;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use ingest_support::*;
use prost::Message;
use sluicegate::ingest::proto::{IngestRequest, IngestResponse, Reason};

/// One gRPC message: uncompressed flag, big-endian length, body.
fn grpc_frame(request: &IngestRequest) -> Bytes {
    let body = request.encode_to_vec();
    let mut frame = BytesMut::with_capacity(5 + body.len());
    frame.extend_from_slice(&[0]);
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    frame.freeze()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_data_frame_per_record_beyond_credit_is_answered_and_the_connection_survives() {
    const FLOOD: usize = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir);
    config.credit_window = 64;
    config.batch_records = 16;
    config.store_delay = Duration::from_millis(5);
    // h2 closes a connection whose unread small DATA frames cost more than half the connection
    // window (about 2 400 of these messages at the default 1 MiB). The reader keeps up on an idle
    // machine, but a CI machine busy with other work can starve it for longer than that; 4 MiB
    // gives it four times the slack, as `--http2-connection-window-bytes` does for operators.
    config.http2_connection_window = 4 << 20;
    let server = start(config).await;
    let tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    let connection = tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = http::Request::post(format!(
        "http://{}/sluicegate.ingest.v1.Ingest/Ingest",
        server.local_addr()
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(())
    .unwrap();
    let (response, mut send) = client.send_request(request, false).unwrap();
    let flooder = tokio::spawn(async move {
        for index in 0..=FLOOD {
            let id = if index == FLOOD {
                "last".to_owned()
            } else {
                format!("flood-{index}")
            };
            let frame = grpc_frame(&IngestRequest {
                records: vec![record(&id)],
            });
            // One DATA frame per message; h2 queues what its send window cannot take yet.
            send.send_data(frame, false).unwrap();
            if index % 256 == 0 {
                tokio::task::yield_now().await;
            }
        }
        send
    });
    let mut body = tokio::time::timeout(PATIENCE, response)
        .await
        .expect("headers in time")
        .expect("the call is answered")
        .into_body();
    let mut buffer = BytesMut::new();
    let mut answers: HashMap<String, i32> = HashMap::new();
    let mut no_credit = 0;
    while answers.len() < FLOOD + 1 {
        let chunk = tokio::time::timeout(PATIENCE, body.data())
            .await
            .expect("answers in time")
            .unwrap_or_else(|| panic!("the response ended after {} answers", answers.len()))
            .unwrap_or_else(|error| panic!("after {} answers: {error}", answers.len()));
        body.flow_control().release_capacity(chunk.len()).unwrap();
        buffer.extend_from_slice(&chunk);
        while buffer.len() >= 5 {
            let len = u32::from_be_bytes(buffer[1..5].try_into().unwrap()) as usize;
            if buffer.len() < 5 + len {
                break;
            }
            buffer.advance(5);
            let response = IngestResponse::decode(buffer.split_to(len).freeze()).unwrap();
            for id in response.stored_ids {
                assert!(answers.insert(id, -1).is_none(), "answered twice");
            }
            for rejection in response.rejected {
                assert_eq!(rejection.reason, Reason::NoCredit as i32);
                no_credit += 1;
                assert!(
                    answers.insert(rejection.id, rejection.reason).is_none(),
                    "answered twice"
                );
            }
        }
    }
    assert!(no_credit > 0, "the flood went beyond the credit window");
    let mut send = tokio::time::timeout(PATIENCE, flooder)
        .await
        .unwrap()
        .unwrap();
    send.send_data(Bytes::new(), true).unwrap();
    assert!(!connection.is_finished(), "the connection is alive");
    let stats = server.stats();
    assert_eq!(stats.received, FLOOD as u64 + 1);
    assert_eq!(stats.no_credit, no_credit);
    server.shutdown();
    assert!(server.wait().await.unwrap().drained);
    let stored = stored_ids(dir.path()).len();
    assert_eq!(
        stored as u64 + no_credit,
        FLOOD as u64 + 1,
        "stored + NO_CREDIT = sent"
    );
}
