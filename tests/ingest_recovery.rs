//! Recovery of the embedded store as operators meet it, through the `sluicegate` binary: a
//! flipped byte in acked data is refused (server and `verify`), nothing is cut, and `repair`
//! moves the damage aside listing what it could not keep; a real torn tail is still cut; and a
//! server killed with SIGKILL at 20 random points of one load loses no acked record and stores
//! none twice (the crash loop; `.ci/crash-loop.sh` runs it with more seeds).
#![cfg(all(feature = "harness", feature = "cli", feature = "ingest"))]

mod ingest_support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ingest_support::*;
use rand::{Rng, SeedableRng};
use sluicegate::ingest::proto::ingest_client::IngestClient;
use sluicegate::ingest::{StoreError, read_dir};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_sluicegate");

/// Starts `sluicegate ingest serve` on `dir`, logging to `log`, and reads the address it prints;
/// `None` (and its exit) if it exits instead.
async fn serve(dir: &Path, log: &Path) -> Result<(Child, SocketAddr), std::process::ExitStatus> {
    let mut child = Command::new(BIN)
        .args(["ingest", "serve", "--listen", "127.0.0.1:0"])
        .args(["--metrics-listen", "off", "--data-dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(
            std::fs::File::options()
                .create(true)
                .append(true)
                .open(log)
                .unwrap(),
        )
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    tokio::time::timeout(PATIENCE, BufReader::new(stdout).read_line(&mut line))
        .await
        .expect("the server starts or exits in time")
        .unwrap();
    let Some(addr) = line.trim().strip_prefix("listening on ") else {
        let status = tokio::time::timeout(PATIENCE, child.wait()).await.unwrap();
        return Err(status.unwrap());
    };
    Ok((child, addr.parse().unwrap()))
}

/// Stops a server with SIGTERM and waits for it to drain and exit 0.
async fn terminate(mut child: Child) {
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(PATIENCE, child.wait()).await.unwrap();
    assert!(exit.unwrap().success());
}

/// Runs `sluicegate ingest <subcommand> --data-dir dir` to its end.
async fn ingest(subcommand: &str, dir: &Path) -> std::process::Output {
    let run = Command::new(BIN)
        .args(["ingest", subcommand, "--data-dir"])
        .arg(dir)
        .output();
    tokio::time::timeout(PATIENCE, run).await.unwrap().unwrap()
}

/// Sends `ids` over one stream in chunks, each answered before the next; returns the acked ids.
async fn push(addr: SocketAddr, ids: &[String]) -> Vec<String> {
    let mut client = IngestClient::new(channel(addr).await);
    let mut stream = RawStream::open(&mut client).await;
    let mut acked = Vec::new();
    for chunk in ids.chunks(500) {
        stream.send_ids(chunk).await;
        let answers = stream.answers(chunk.len()).await;
        assert!(answers.rejected.is_empty(), "{:?}", answers.rejected);
        acked.extend(answers.stored);
    }
    acked
}

fn segment(dir: &Path) -> PathBuf {
    dir.join("segment-00000000.log")
}

/// The files of `dir` and their lengths: what "nothing deleted, nothing cut" compares.
fn listing(dir: &Path) -> Vec<(String, u64)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            (name, entry.metadata().unwrap().len())
        })
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_in_acked_data_is_refused_and_repair_loses_only_the_damaged_record() {
    let dir = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("serve.log");
    let (child, addr) = serve(dir.path(), &log).await.expect("starts");
    let all = ids("flip", 0..20_000);
    assert_eq!(push(addr, &all).await.len(), all.len());
    terminate(child).await;

    // One byte flipped in the middle of the active (last, only) segment's frames.
    let ends: Vec<u64> = read_dir(dir.path())
        .unwrap()
        .records
        .iter()
        .scan(0, |end, record| {
            *end += sluicegate::ingest::stored_len(record) as u64;
            Some(*end)
        })
        .collect();
    let flipped = ends[ends.len() - 1] / 2;
    let mut bytes = std::fs::read(segment(dir.path())).unwrap();
    bytes[flipped as usize] ^= 0x20;
    std::fs::write(segment(dir.path()), &bytes).unwrap();
    let Err(StoreError::Corrupt {
        offset,
        records_after,
        ..
    }) = read_dir(dir.path())
    else {
        panic!("the flipped byte is not reported as corruption");
    };
    assert!(offset <= flipped && flipped - offset < 100, "{offset}");
    // The damaged record (its id still reads) and every one after it.
    let before = ends.iter().filter(|&&end| end <= offset).count();
    assert_eq!(records_after, (all.len() - before) as u64);
    let before = listing(dir.path());

    // The server refuses to start, naming the segment and the offset; verify fails the same way.
    let refused = serve(dir.path(), &log).await.expect_err("refuses to start");
    assert!(!refused.success());
    let said = std::fs::read_to_string(&log).unwrap();
    let naming = format!("segment-00000000.log is corrupt at byte {offset}");
    assert!(said.contains(&naming), "{said}");
    assert!(said.contains(&format!("records found after it: {records_after}")));
    let verify = ingest("verify", dir.path()).await;
    assert!(!verify.status.success());
    let said = String::from_utf8_lossy(&verify.stderr);
    assert!(
        said.contains(&naming) && said.contains("ingest repair"),
        "{said}"
    );
    assert_eq!(listing(dir.path()), before, "nothing deleted or cut");

    // Repair moves the damage aside, lists the one record it could not keep, keeps the rest.
    let repair = ingest("repair", dir.path()).await;
    assert!(repair.status.success(), "{repair:?}");
    let said = String::from_utf8(repair.stdout).unwrap();
    let lost: Vec<&str> = said
        .lines()
        .filter_map(|line| line.strip_prefix("  not kept: record \""))
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert_eq!(lost.len(), 1, "{said}");
    let moved = dir
        .path()
        .join(format!("segment-00000000.log.damaged-{offset}"));
    assert_eq!(
        std::fs::metadata(&moved).unwrap().len(),
        before
            .iter()
            .find(|(name, _)| name.ends_with(".log"))
            .unwrap()
            .1
            - offset
    );
    let stored: HashSet<String> = stored_ids(dir.path()).into_iter().collect();
    let expected: HashSet<String> = all.iter().filter(|id| *id != lost[0]).cloned().collect();
    assert_eq!(stored, expected);
    assert!(ingest("verify", dir.path()).await.status.success());

    // The server starts again, and the lost record can be sent again.
    let (child, addr) = serve(dir.path(), &log).await.expect("starts after repair");
    assert_eq!(push(addr, &[lost[0].to_owned()]).await.len(), 1);
    terminate(child).await;
    assert_eq!(stored_ids(dir.path()).len(), all.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_tail_after_the_synced_length_is_still_cut_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("serve.log");
    let (child, addr) = serve(dir.path(), &log).await.expect("starts");
    let all = ids("torn", 0..2_000);
    assert_eq!(push(addr, &all).await.len(), all.len());
    terminate(child).await;

    // A write that never completed: half a frame after the last synced one.
    let end: u64 = read_dir(dir.path())
        .unwrap()
        .records
        .iter()
        .map(|record| sluicegate::ingest::stored_len(record) as u64)
        .sum();
    let mut half = Vec::new();
    let torn = record("torn-unacked");
    half.extend_from_slice(&(prost::Message::encoded_len(&torn) as u32).to_le_bytes());
    half.extend_from_slice(&[1, 2, 3, 4, 0x0A, 12]);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(segment(dir.path()))
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &half, end).unwrap();
    drop(file);
    assert_eq!(
        read_dir(dir.path()).unwrap().torn_tail.map(|t| t.0),
        Some(end)
    );
    assert!(ingest("verify", dir.path()).await.status.success());

    let (child, _) = serve(dir.path(), &log).await.expect("starts");
    terminate(child).await;
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(said.contains("truncated a torn tail"), "{said}");
    assert_eq!(std::fs::metadata(segment(dir.path())).unwrap().len(), end);
    assert_eq!(stored_ids(dir.path()), all);
}

/// A setting of the crash loop from the environment, else `default`.
fn crash_loop_setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// One load of 200 000 records; the server is killed with SIGKILL at 20 random (seeded) points,
/// each just after a request was sent (so mostly in the middle of a write) and restarted on the
/// same directory, and the client resends everything not yet acked, with the same ids. At the
/// end every acked id is stored exactly once and `verify` is clean.
///
/// About 20 s in a debug build. `SLUICEGATE_CRASH_LOOP_SEED` and `SLUICEGATE_CRASH_LOOP_RECORDS`
/// change the kill points and the load; `.ci/crash-loop.sh` runs it with several seeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_loop_twenty_kills_lose_nothing_acked_and_store_nothing_twice() {
    const KILLS: usize = 20;
    const CHUNK: usize = 500;
    let total = usize::try_from(crash_loop_setting("SLUICEGATE_CRASH_LOOP_RECORDS", 200_000))
        .expect("a record count");
    let seed = crash_loop_setting("SLUICEGATE_CRASH_LOOP_SEED", 17);
    let dir = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("serve.log");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    // Kill after these many requests sent (counted over the whole load), spread over it.
    let chunks = total.div_ceil(CHUNK);
    let mut points = std::collections::BTreeSet::new();
    while points.len() < KILLS {
        points.insert(rng.random_range(1..chunks * 9 / 10));
    }
    let mut kill_after = points.into_iter().peekable();

    let all = ids("loop", 0..total);
    let mut acked: HashSet<String> = HashSet::with_capacity(total);
    let mut sent_requests = 0;
    let mut kills = 0;
    while acked.len() < total {
        let (mut child, addr) = serve(dir.path(), &log).await.expect("restarts");
        let pending: Vec<String> = all
            .iter()
            .filter(|id| !acked.contains(*id))
            .cloned()
            .collect();
        let mut client = IngestClient::new(channel(addr).await);
        let mut stream = RawStream::open(&mut client).await;
        let mut killed = false;
        for chunk in pending.chunks(CHUNK) {
            stream.send_ids(chunk).await;
            sent_requests += 1;
            if kill_after.next_if(|&at| at <= sent_requests).is_some() {
                // Somewhere in the write of this request, or just before or after it.
                let pause = rng.random_range(0..3_000);
                tokio::time::sleep(Duration::from_micros(pause)).await;
                child.start_kill().unwrap();
                tokio::time::timeout(PATIENCE, child.wait())
                    .await
                    .unwrap()
                    .unwrap();
                kills += 1;
                killed = true;
                break;
            }
            let answers = stream.answers(chunk.len()).await;
            assert!(answers.rejected.is_empty(), "{:?}", answers.rejected);
            acked.extend(answers.stored);
        }
        drop(stream);
        if !killed {
            terminate(child).await;
        }
        // After every crash, before recovery: nothing acked is missing.
        let contents = read_dir(dir.path()).expect("only a torn tail, never corruption");
        let on_disk: HashSet<&str> = contents.records.iter().map(|r| r.id.as_str()).collect();
        let missing = acked
            .iter()
            .filter(|id| !on_disk.contains(id.as_str()))
            .count();
        assert_eq!(missing, 0, "acked but lost after kill {kills}");
    }
    assert_eq!(kills, KILLS);

    let contents = read_dir(dir.path()).unwrap();
    assert_eq!(contents.torn_tail, None);
    assert_eq!(
        contents.records.len(),
        total,
        "every id stored exactly once"
    );
    let distinct: HashSet<&str> = contents.records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(distinct.len(), total);
    let verify = ingest("verify", dir.path()).await;
    assert!(verify.status.success(), "{verify:?}");
    let said = std::fs::read_to_string(&log).unwrap();
    let cut = said.matches("truncated a torn tail").count();
    println!("seed {seed}: {kills} kills, {cut} torn tails cut, {total} records stored once");
}
