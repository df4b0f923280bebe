//! The ingest server over real loopback sockets: acks, order, backpressure, disconnects and
//! retries, drain, message limits, invalid records, overflow policies, health, reflection and
//! compression.
#![cfg(feature = "ingest")]

mod ingest_support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use ingest_support::*;
use sluicegate::ingest::load::{self, LoadConfig};
use sluicegate::ingest::proto::ingest_client::IngestClient;
use sluicegate::ingest::proto::{Reason, Record};
use sluicegate::sinks::OverflowPolicy;
use tonic::Code;
use tonic::codec::CompressionEncoding;

fn copies(ids: &[String]) -> HashMap<&str, usize> {
    let mut copies = HashMap::new();
    for id in ids {
        *copies.entry(id.as_str()).or_default() += 1;
    }
    copies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_follow_the_records_in_order_and_the_store_holds_them_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(&dir)).await;
    let mut client = IngestClient::new(channel(server.local_addr()).await);
    let mut stream = RawStream::open(&mut client).await;
    let sent = ids("order", 0..300);
    for chunk in sent.chunks(100) {
        stream.send_ids(chunk).await;
    }
    stream.close();
    let answers = stream.until_end().await;
    assert!(
        answers.ended_cleanly(),
        "{:?} the stream ends cleanly",
        answers.end
    );
    assert!(answers.rejected.is_empty());
    assert_eq!(answers.stored, sent, "acks name every record, in order");
    server.shutdown();
    assert!(server.wait().await.unwrap().drained);
    assert_eq!(
        stored_ids(dir.path()),
        sent,
        "the store holds them in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_statistics_are_current_while_a_store_write_is_stuck() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir);
    config.batch_records = 10;
    config.capacity = 20;
    config.group_batches = 1;
    // Long enough that the first write is still stuck while the queue fills behind it.
    config.store_delay = Duration::from_millis(1000);
    let server = start(config).await;
    let mut client = IngestClient::new(channel(server.local_addr()).await);
    let mut stream = RawStream::open(&mut client).await;
    let sent = ids("stuck", 0..30);
    let started = tokio::time::Instant::now();
    stream.send_ids(&sent).await;
    // The writer takes the first batch and is stuck in it; the other two fill the queue. The
    // statistics must say so now, not after the write.
    let full = async {
        loop {
            let stats = server.stats();
            if stats.queue.delivered == 1 && stats.queue.len == 2 {
                return stats;
            }
            tokio::task::yield_now().await;
        }
    };
    let stats = tokio::time::timeout(PATIENCE, full)
        .await
        .expect("the queue fills");
    // Seen during the first write, before anything was answered: a snapshot taken by the
    // writer after each write would show the full queue only once that write's second is over.
    assert!(started.elapsed() < Duration::from_millis(500), "seen late");
    assert_eq!((stats.queue.queued, stats.stored), (3, 0), "{stats:?}");
    let answers = stream.answers(sent.len()).await;
    assert_eq!(answers.stored, sent);
    server.shutdown();
    let stats = server.wait().await.unwrap().stats;
    assert_eq!((stats.queue.len, stats.store_writes), (0, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_store_throttles_the_client_and_the_queue_stays_within_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let batch = 16;
    let streams = 2;
    let mut config = config(&dir);
    config.capacity = 32;
    config.batch_records = batch;
    config.group_batches = 1;
    config.store_delay = Duration::from_millis(5);
    // Three batches per stream in flight: more than the queue holds, so the queue pushes back.
    config.credit_window = 3 * batch;
    let server = start(config.clone()).await;
    let mut load_config = LoadConfig::new(server.local_addr(), 1200);
    load_config.batch_size = batch;
    load_config.concurrency = streams;
    load_config.record_size = 64;
    let mut run = std::pin::pin!(load::run(load_config));
    // Observe, while the load runs, how many records the server has read off the wire and not
    // answered yet. The server keeps reading whatever the queue does (h2's flood guard punishes
    // a server that stops), so what bounds it is the credit window of each stream.
    let mut held_max = 0;
    let mut ticks = tokio::time::interval(Duration::from_millis(2));
    let report = loop {
        tokio::select! {
            report = &mut run => break report.unwrap(),
            _ = ticks.tick() => {
                let stats = server.stats();
                held_max = held_max.max(stats.received - stats.stored - stats.rejected);
            }
        }
    };
    assert!(report.accounting.is_exact(), "{}", report.render());
    assert_eq!(report.accounting.stored, 1200);
    server.shutdown();
    let stats = server.wait().await.unwrap().stats;
    assert!(
        stats.queue.blocked_emits > 0,
        "the queue pushed back: {stats:?}"
    );
    assert!(stats.queue_high_water <= stats.queue_capacity, "{stats:?}");
    assert!(stats.queue_capacity as usize * batch <= config.capacity);
    let bound = (streams * config.credit_window) as u64;
    assert!(
        held_max <= bound,
        "held {held_max} > {bound}: the server read ahead"
    );
    let stored = stored_ids(dir.path());
    assert_eq!(stored.len(), 1200);
    assert!(copies(&stored).values().all(|count| *count == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_midstream_has_every_acked_record_stored_and_a_retry_stores_nothing_twice()
 {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir);
    config.batch_records = 50;
    config.store_delay = Duration::from_millis(2);
    let server = start(config).await;
    let all = ids("retry", 0..1000);
    let acked = {
        let mut client = IngestClient::new(channel(server.local_addr()).await);
        let mut stream = RawStream::open(&mut client).await;
        for chunk in all.chunks(100) {
            stream.send_ids(chunk).await;
        }
        // Hang up after the first acks, with most records unanswered.
        let answers = stream.answers(1).await;
        assert!(!answers.stored.is_empty());
        answers.stored
    };
    // The connection is gone. Everything acked is stored:
    let stored_now: HashSet<String> = stored_ids(dir.path()).into_iter().collect();
    assert!(acked.iter().all(|id| stored_now.contains(id)));

    // The retry sends everything again, with the same ids: all acked, none stored twice.
    let mut client = IngestClient::new(channel(server.local_addr()).await);
    let mut stream = RawStream::open(&mut client).await;
    for chunk in all.chunks(100) {
        stream.send_ids(chunk).await;
    }
    stream.close();
    let answers = stream.until_end().await;
    assert!(answers.ended_cleanly(), "{:?} ", answers.end);
    assert_eq!(answers.stored.len(), 1000);
    assert_eq!(
        answers.stored.iter().collect::<HashSet<_>>().len(),
        1000,
        "every record acked once on this stream"
    );
    server.shutdown();
    let report = server.wait().await.unwrap();
    assert!(report.stats.duplicates >= acked.len() as u64);
    let stored = stored_ids(dir.path());
    assert_eq!(stored.len(), 1000, "stored once each");
    assert_eq!(copies(&stored).len(), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_open_streams_and_answers_everything_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir);
    config.batch_records = 25;
    config.store_delay = Duration::from_millis(20);
    let server = start(config).await;
    let mut client = IngestClient::new(channel(server.local_addr()).await);
    let mut stream = RawStream::open(&mut client).await;
    let sent = ids("drain", 0..250);
    for chunk in sent.chunks(50) {
        stream.send_ids(chunk).await;
    }
    // The client keeps its side open; wait until the server has read everything (bounded).
    let mut ticks = tokio::time::interval(Duration::from_millis(5));
    for _ in 0..2000 {
        if server.stats().received == 250 {
            break;
        }
        ticks.tick().await;
    }
    assert_eq!(server.stats().received, 250);
    server.shutdown();
    let answers = stream.until_end().await;
    assert!(
        answers.ended_cleanly(),
        "{:?} the open stream was ended by the drain",
        answers.end
    );
    assert_eq!(
        answers.stored, sent,
        "everything accepted was stored and acked"
    );
    let report = server.wait().await.unwrap();
    assert!(report.drained);
    assert_eq!(stored_ids(dir.path()), sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_ends_the_stream_with_resource_exhausted_after_acking_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir);
    config.max_message_bytes = 16 << 10;
    let server = start(config).await;
    let mut client = IngestClient::new(channel(server.local_addr()).await);
    let mut stream = RawStream::open(&mut client).await;
    stream.send_ids(&ids("small", 0..3)).await;
    let first = stream.answers(3).await;
    assert_eq!(first.stored, ids("small", 0..3));
    let huge = Record {
        id: "huge".into(),
        payload: vec![0; 32 << 10].into(),
        key: None,
    };
    stream.send(vec![huge]).await;
    let answers = stream.until_end().await;
    assert!(answers.stored.is_empty());
    let status = answers
        .end
        .expect("the stream ended")
        .expect_err("with an error");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    server.shutdown();
    assert!(server.wait().await.unwrap().drained);
}

/// tonic answers an oversized message with OUT_OF_RANGE; the server's layer makes it
/// RESOURCE_EXHAUSTED on every service, in the headers of a trailers-only answer (a health
/// check or watch, refused before any answer) as in the trailers after a stream's answers (the
/// ingest stream: see the test above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_an_oversized_message_with_resource_exhausted() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir);
    config.max_message_bytes = 4 << 10;
    let server = start(config).await;
    let mut health = HealthClient::new(channel(server.local_addr()).await);
    let oversized = || HealthCheckRequest {
        service: "x".repeat(8 << 10),
    };
    let status = health
        .check(oversized())
        .await
        .expect_err("an oversized check fails");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("too large"), "{status:?}");
    let status = health
        .watch(oversized())
        .await
        .expect_err("an oversized watch fails");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    // Other statuses pass untouched: an unknown service is still NOT_FOUND.
    let status = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .expect_err("an unknown service");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    server.shutdown();
    assert!(server.wait().await.unwrap().drained);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_records_are_rejected_with_a_reason_and_the_stream_continues() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(&dir)).await;
    let mut client = IngestClient::new(channel(server.local_addr()).await);
    let mut stream = RawStream::open(&mut client).await;
    stream
        .send(vec![
            record("a"),
            record(""),
            record(&"x".repeat(300)),
            record("b"),
        ])
        .await;
    stream.send(vec![record("c")]).await;
    stream.close();
    let answers = stream.until_end().await;
    assert!(answers.ended_cleanly(), "{:?} ", answers.end);
    assert_eq!(answers.stored, ["a", "b", "c"]);
    assert_eq!(answers.rejected.len(), 2);
    for rejection in &answers.rejected {
        assert_eq!(rejection.reason, Reason::Invalid as i32);
        assert!(!rejection.detail.is_empty());
    }
    assert_eq!(answers.rejected[0].id, "");
    assert!(answers.rejected[0].detail.contains("empty id"));
    server.shutdown();
    assert!(server.wait().await.unwrap().drained);
    assert_eq!(stored_ids(dir.path()), ["a", "b", "c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shedding_policies_answer_every_refused_record_as_rejected_with_its_reason() {
    for (policy, reason) in [
        (OverflowPolicy::Reject, "REASON_QUEUE_FULL"),
        (OverflowPolicy::DropNewest, "REASON_DROPPED_NEWEST"),
        (OverflowPolicy::DropOldest, "REASON_EVICTED_OLDEST"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(&dir);
        config.policy = policy;
        config.capacity = 16;
        config.batch_records = 16;
        config.group_batches = 1;
        config.store_delay = Duration::from_millis(10);
        let server = start(config).await;
        let mut load_config = LoadConfig::new(server.local_addr(), 2000);
        load_config.batch_size = 16;
        load_config.concurrency = 4;
        load_config.record_size = 32;
        load_config.retries = 0;
        let report = load::run(load_config).await.unwrap();
        let accounting = &report.accounting;
        assert!(accounting.is_exact(), "{policy:?}: {}", report.render());
        assert!(accounting.rejected > 0, "{policy:?} shed nothing");
        assert!(accounting.stored > 0, "{policy:?} stored nothing");
        assert_eq!(
            accounting.rejections.keys().collect::<Vec<_>>(),
            [reason],
            "{policy:?}"
        );
        server.shutdown();
        assert!(server.wait().await.unwrap().drained);
        let stored = stored_ids(dir.path());
        assert_eq!(stored.len() as u64, accounting.stored, "{policy:?}");
        assert_eq!(copies(&stored).len(), stored.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_serving_then_not_serving_during_the_drain() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

    let dir = tempfile::tempdir().unwrap();
    let server = start(config(&dir)).await;
    let mut health = HealthClient::new(channel(server.local_addr()).await);
    let request = || HealthCheckRequest {
        service: "sluicegate.ingest.v1.Ingest".into(),
    };
    let status = health.check(request()).await.unwrap().into_inner().status;
    assert_eq!(status, ServingStatus::Serving as i32);
    let mut watch = health.watch(request()).await.unwrap().into_inner();
    let first = watch.next().await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);
    server.shutdown();
    let during = tokio::time::timeout(PATIENCE, watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(during.status, ServingStatus::NotServing as i32);
    // The open watch does not hold the shutdown up beyond its grace.
    assert!(server.wait().await.unwrap().drained);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_v1_and_v1alpha_list_the_ingest_and_health_services() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(&dir)).await;
    let channel = channel(server.local_addr()).await;
    {
        use tonic_reflection::pb::v1::ServerReflectionRequest;
        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
        let mut client = ServerReflectionClient::new(channel.clone());
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut responses = client
            .server_reflection_info(futures::stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let response = responses.next().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
            panic!("not a service list: {response:?}");
        };
        let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
        assert!(
            names.contains(&"sluicegate.ingest.v1.Ingest".to_owned()),
            "{names:?}"
        );
        assert!(
            names.contains(&"grpc.health.v1.Health".to_owned()),
            "{names:?}"
        );
    }
    {
        use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
        use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
        let mut client = ServerReflectionClient::new(channel);
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "sluicegate.ingest.v1.Ingest".into(),
            )),
        };
        let mut responses = client
            .server_reflection_info(futures::stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let response = responses.next().await.unwrap().unwrap();
        assert!(
            matches!(
                response.message_response,
                Some(MessageResponse::FileDescriptorResponse(_))
            ),
            "{response:?}"
        );
    }
    server.shutdown();
    assert!(server.wait().await.unwrap().drained);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_and_zstd_requests_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(&dir)).await;
    for (encoding, prefix) in [
        (CompressionEncoding::Gzip, "gzip"),
        (CompressionEncoding::Zstd, "zstd"),
    ] {
        let mut client = IngestClient::new(channel(server.local_addr()).await)
            .send_compressed(encoding)
            .accept_compressed(encoding);
        let mut stream = RawStream::open(&mut client).await;
        stream.send_ids(&ids(prefix, 0..100)).await;
        stream.close();
        let answers = stream.until_end().await;
        assert!(answers.ended_cleanly(), "{:?} {prefix}", answers.end);
        assert_eq!(answers.stored, ids(prefix, 0..100), "{prefix}");
    }
    server.shutdown();
    assert!(server.wait().await.unwrap().drained);
}

/// A client that ignores its credits and floods one-record messages at a slow store: h2's flood
/// guard (GOAWAY ENHANCE_YOUR_CALM) must not end the connection, because the server keeps
/// reading. Every record is answered exactly once, stored or `REASON_NO_CREDIT`, and the same
/// stream then stores a record sent within credit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_beyond_the_credit_window_are_rejected_with_no_credit_and_the_stream_survives() {
    const FLOOD: usize = 20_000;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir);
    config.credit_window = 64;
    config.batch_records = 16;
    config.store_delay = Duration::from_millis(5);
    let server = start(config).await;
    let mut client = IngestClient::new(channel(server.local_addr()).await);
    let mut stream = RawStream::open(&mut client).await;
    assert_eq!(stream.granted, 64);
    let sent = ids("flood", 0..FLOOD);
    let flooder = {
        let tx = stream.tx.clone().expect("open");
        let sent = sent.clone();
        tokio::spawn(async move {
            for id in sent {
                let request = sluicegate::ingest::proto::IngestRequest {
                    records: vec![record(&id)],
                };
                tx.send(request)
                    .await
                    .expect("the request stream stays open");
            }
        })
    };
    let answers = stream.answers(FLOOD).await;
    tokio::time::timeout(PATIENCE, flooder)
        .await
        .expect("the flood is sent in time")
        .expect("the flooder does not panic");
    assert!(
        answers.end.is_none(),
        "the stream is still open: {:?}",
        answers.end
    );
    let no_credit: Vec<&str> = answers
        .rejected
        .iter()
        .inspect(|rejection| assert_eq!(rejection.reason, Reason::NoCredit as i32))
        .map(|rejection| rejection.id.as_str())
        .collect();
    let mut answered: Vec<&str> = answers.stored.iter().map(String::as_str).collect();
    answered.extend(&no_credit);
    assert_eq!(answered.len(), FLOOD, "every record is answered");
    assert!(
        copies(
            &answered
                .iter()
                .map(|id| (*id).to_owned())
                .collect::<Vec<_>>()
        )
        .values()
        .all(|&count| count == 1),
        "each exactly once"
    );
    assert!(
        !answers.stored.is_empty() && !no_credit.is_empty(),
        "{} stored, {} over credit: both happen",
        answers.stored.len(),
        no_credit.len()
    );

    // Same stream, same connection: a record within credit is stored.
    stream.send_ids(&["after-the-flood".to_owned()]).await;
    let after = stream.answers(1).await;
    assert_eq!(after.stored, ["after-the-flood"], "{after:?}");
    stream.close();
    assert!(stream.until_end().await.ended_cleanly());

    let stats = server.stats();
    assert_eq!(stats.no_credit, no_credit.len() as u64);
    assert_eq!(stats.overrun_streams, 1);
    assert_eq!(stats.received, FLOOD as u64 + 1);
    server.shutdown();
    assert!(server.wait().await.unwrap().drained);
    let mut expected: HashSet<String> = answers.stored.iter().cloned().collect();
    expected.insert("after-the-flood".into());
    let in_store: HashSet<String> = stored_ids(dir.path()).into_iter().collect();
    assert_eq!(
        in_store, expected,
        "the store holds exactly the records acked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_stream_is_closed_with_deadline_exceeded_after_its_records_are_answered() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir);
    config.stream_idle_timeout = Duration::from_millis(300);
    let server = start(config).await;
    let mut client = IngestClient::new(channel(server.local_addr()).await);
    let mut stream = RawStream::open(&mut client).await;
    let sent = ids("idle", 0..3);
    stream.send_ids(&sent).await;
    // The client keeps its side open and sends nothing more.
    let answers = stream.until_end().await;
    assert_eq!(answers.stored, sent, "answered before the stream ends");
    let status = match answers.end {
        Some(Err(status)) => status,
        other => panic!("expected DEADLINE_EXCEEDED, got {other:?}"),
    };
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(status.message().contains("idle"), "{status:?}");
    assert_eq!(server.stats().idle_streams, 1);
    server.shutdown();
    assert!(server.wait().await.unwrap().drained);
    assert_eq!(stored_ids(dir.path()), sent);
}
