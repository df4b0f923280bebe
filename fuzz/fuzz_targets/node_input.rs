//! Any bytes on the node's stdin, on a fresh node and after a valid `init` line: the node never
//! panics, ends cleanly when its input ends (it survives any byte), and everything it writes is
//! a line the harness accepts as a Maelstrom message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluicegate::internals::parse_outgoing;
use sluicegate::node::{NodeConfig, run_node};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};

const INIT: &[u8] =
    br#"{"src":"c0","dest":"n0","body":{"type":"init","msg_id":1,"node_id":"n0","node_ids":["n0","n1"]}}
"#;

/// Runs one node over `input` on a paused clock and returns what it wrote.
fn run(input: Vec<u8>) -> Vec<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let (mut stdin, node_stdin) = tokio::io::duplex(1 << 16);
        let (node_stdout, mut stdout) = tokio::io::duplex(1 << 16);
        let node = tokio::spawn(run_node(
            BufReader::new(node_stdin),
            node_stdout,
            NodeConfig::default(),
        ));
        let reader = tokio::spawn(async move {
            let mut written = Vec::new();
            stdout
                .read_to_end(&mut written)
                .await
                .expect("in-memory read");
            written
        });
        // The node stops reading only by ending, so a failed write means it gave up early.
        let wrote = stdin.write_all(&input).await;
        drop(stdin);
        let report = node.await.expect("the node does not panic");
        assert!(report.is_ok(), "the node survives any input: {report:?}");
        wrote.expect("the node reads its whole input");
        reader.await.expect("reader")
    })
}

fn check_output(output: &[u8]) {
    assert!(
        output.is_empty() || output.ends_with(b"\n"),
        "whole lines only"
    );
    for line in output
        .split(|&byte| byte == b'\n')
        .filter(|line| !line.is_empty())
    {
        let line = std::str::from_utf8(line).expect("output is UTF-8");
        if let Err(error) = parse_outgoing(line) {
            panic!("the harness refuses the node's line {line:?}: {error}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check_output(&run(data.to_vec()));
    let mut after_init = INIT.to_vec();
    after_init.extend_from_slice(data);
    let output = run(after_init);
    check_output(&output);
    let first = output
        .split(|&byte| byte == b'\n')
        .next()
        .unwrap_or_default();
    let first = std::str::from_utf8(first).expect("checked above");
    assert!(
        first.contains(r#""type":"init_ok""#),
        "init is answered first: {first}"
    );
});
