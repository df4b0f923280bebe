//! The event loop that issues operations and records the history (docs/harness.md §2.3-§2.7): one
//! loop numbers every event, dequeues completions before it considers new invocations, stamps
//! invocations with their scheduled time and completions with the time it took them.

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::harness::check::WorkloadKind;
use crate::harness::clock::Clock;
use crate::harness::history::{History, Nanos, Op, OpFn, OpType, Process};
use crate::harness::nemesis::Shape;
use crate::harness::net::Network;
use crate::harness::schedule::{Cursor, Stagger};
use crate::harness::workload::kafka::max_offsets as kafka_max_offsets;
use crate::harness::workload::{Completion, OpChooser, Session, Workload};

/// Workload RPCs time out this long after the send (docs/harness.md §2.4).
pub const RPC_TIMEOUT: Duration = Duration::from_secs(5);
/// The final phase's recovery wait (docs/harness.md §2.6).
pub const RECOVERY_WAIT: Duration = Duration::from_secs(10);

/// What the main and final phases do.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Server nodes in test order.
    pub nodes: Vec<String>,
    /// Client threads; thread `t` is bound to `nodes[t mod N]`.
    pub concurrency: usize,
    /// The main phase's length, counted from the first op.
    pub time_limit: Duration,
    /// Client ops per second over all threads; 0 for none.
    pub rate: f64,
    /// Mean time between partition ops, if the nemesis is on.
    pub nemesis_interval: Option<Duration>,
    /// Seeds the op mix, the stagger and the nemesis.
    pub seed: u64,
    /// The final phase's recovery wait; Maelstrom's is 10 s ([`RECOVERY_WAIT`]). Shorter
    /// waits are for the harness's own quick tests.
    pub recovery_wait: Duration,
    /// Kafka: the probability that an op is preceded by an assign (`--kafka-assign-p`; 1/8 as
    /// in Maelstrom v0.2.3 / Jepsen 0.3.1, 1/64 from v0.2.4).
    pub kafka_assign_p: f64,
}

/// Kafka's final phase runs at most this long from its first op (Maelstrom's `kafka.clj`).
const KAFKA_FINAL_LIMIT: Duration = Duration::from_secs(10);
/// Mean gap between one thread's final polls (Jepsen's `stagger 1/5`).
const KAFKA_FINAL_POLL_GAP_NS: Nanos = 200_000_000;

struct Thread {
    node: String,
    process: u64,
    busy: bool,
    /// The thread's session and the process it was opened for.
    client: Option<(u64, Session)>,
}

struct Done {
    thread: usize,
    process: u64,
    client: Session,
    f: OpFn,
    sent: Value,
    final_read: bool,
    completion: Completion,
}

/// Runs the phases and returns the history.
pub struct Interpreter {
    plan: Plan,
    network: Arc<Network>,
    workload: Arc<Workload>,
    clock: Clock,
    chooser: OpChooser,
    rng: ChaCha8Rng,
    nemesis_rng: ChaCha8Rng,
    threads: Vec<Thread>,
    cursor: Cursor,
    history: History,
    done_sender: mpsc::UnboundedSender<Done>,
    done: mpsc::UnboundedReceiver<Done>,
    progress: ProgressBar,
}

impl Interpreter {
    /// An interpreter for `plan`, timing everything on `clock`.
    pub fn new(plan: Plan, network: Arc<Network>, workload: Workload, clock: Clock) -> Self {
        let threads = (0..plan.concurrency)
            .map(|t| Thread {
                node: plan.nodes[t % plan.nodes.len()].clone(),
                process: t as u64,
                busy: false,
                client: None,
            })
            .collect();
        let (done_sender, done) = mpsc::unbounded_channel();
        let expected_ops = (plan.rate * plan.time_limit.as_secs_f64()) as u64;
        let progress = ProgressBar::new(expected_ops);
        progress.set_style(
            ProgressStyle::with_template("{elapsed:>4} {bar:30} {pos}/{len} ops {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Interpreter {
            cursor: Cursor::new(plan.concurrency),
            chooser: match workload.kind() {
                WorkloadKind::Kafka => OpChooser::kafka(plan.kafka_assign_p, plan.concurrency),
                kind => OpChooser::new(kind),
            },
            rng: ChaCha8Rng::seed_from_u64(plan.seed),
            nemesis_rng: ChaCha8Rng::seed_from_u64(plan.seed.wrapping_add(1)),
            plan,
            network,
            workload: Arc::new(workload),
            clock,
            threads,
            history: History::new(),
            done_sender,
            done,
            progress,
        }
    }

    /// The main phase, then (for workloads that have one) the final phase. Returns the history;
    /// the threads' clients are closed when it returns.
    pub async fn run(mut self) -> History {
        self.main_phase().await;
        self.wait_until_idle().await;
        if self.workload.has_final_phase() {
            self.final_phase().await;
        } else if self.workload.kind() == WorkloadKind::Kafka {
            self.kafka_final_phase().await;
        }
        self.progress.finish_and_clear();
        self.history
    }

    async fn main_phase(&mut self) {
        let time_limit = self.plan.time_limit.as_nanos() as Nanos;
        let mut clients = (self.plan.rate > 0.0).then(|| Stagger::new(1e9 / self.plan.rate));
        let mut nemesis = self
            .plan
            .nemesis_interval
            .map(|interval| (Stagger::new(interval.as_nanos() as f64), true));
        // With no client ops the client generator is one sleep of the time limit.
        let mut cutoff = clients.is_none().then(|| self.clock.now() + time_limit);
        loop {
            self.take_completions();
            let now = self.clock.now();
            if cutoff.is_some_and(|cutoff| now >= cutoff) {
                return;
            }
            let client_due = clients
                .as_ref()
                .filter(|_| self.free_client().is_some())
                .map(|stagger| stagger.due(now));
            let nemesis_due = nemesis.as_ref().map(|(stagger, _)| stagger.due(now));
            // `any` takes the soonest op; on a tie the nemesis, which comes first.
            let nemesis_first = match (nemesis_due, client_due) {
                (Some(n), Some(c)) => n <= c,
                (Some(_), None) => true,
                _ => false,
            };
            let due = if nemesis_first {
                nemesis_due
            } else {
                client_due
            };
            let Some(due) = due else {
                self.await_completion(cutoff).await;
                continue;
            };
            // An op held for its scheduled time is stamped with that time, and the next gap
            // counts from it (Jepsen's stagger), so timer granularity does not slow the rate.
            let stamp = if due > now {
                if cutoff.is_some_and(|cutoff| due >= cutoff) {
                    return;
                }
                if self.await_completion(Some(due)).await {
                    continue;
                }
                due
            } else {
                now
            };
            cutoff.get_or_insert(stamp + time_limit);
            if nemesis_first {
                if let Some((stagger, start)) = nemesis.as_mut() {
                    stagger.dispatched(stamp, &mut self.nemesis_rng);
                    self.run_nemesis(stamp, *start);
                    *start = !*start;
                }
            } else if let (Some(stagger), Some(thread)) = (clients.as_mut(), self.free_client()) {
                stagger.dispatched(stamp, &mut self.rng);
                let (f, value) = self.chooser.next(&mut self.rng, stamp);
                self.invoke(thread, f, value, stamp, false);
            }
            self.cursor.advance();
        }
    }

    /// Heal (with a nemesis), wait for recovery, then one final read per thread, all at once.
    async fn final_phase(&mut self) {
        if self.plan.nemesis_interval.is_some() {
            self.run_nemesis(self.clock.now(), false);
        }
        tracing::info!("Waiting for recovery...");
        self.progress.set_message("waiting for recovery");
        tokio::time::sleep(self.plan.recovery_wait).await;
        for thread in 0..self.threads.len() {
            self.invoke(thread, OpFn::Read, Value::Null, self.clock.now(), true);
        }
        self.wait_until_idle().await;
    }

    /// Kafka's final phase (Jepsen's `final-polls` under Maelstrom's 10 s limit): heal, wait,
    /// then each thread on its own crashes, assigns every key seen with seek-to-beginning, and
    /// polls with gaps uniform on [0, 400 ms) until its own `:ok` polls have reached every
    /// key's highest known offset, or the limit ends. Its ops carry `:final? true`; on an
    /// assign that means seek-to-beginning.
    async fn kafka_final_phase(&mut self) {
        if self.plan.nemesis_interval.is_some() {
            self.run_nemesis(self.clock.now(), false);
        }
        tracing::info!("Waiting for recovery...");
        self.progress.set_message("waiting for recovery");
        tokio::time::sleep(self.plan.recovery_wait).await;
        let targets = self.chooser.kafka_targets();
        if targets.is_empty() {
            return;
        }
        let keys: Vec<Value> = targets.keys().map(|k| Value::from(k.as_str())).collect();
        let threads = self.threads.len();
        // Per thread: ops issued so far (crash, assign, then polls), when the next poll is
        // due, and the keys still short of their target.
        let mut stage = vec![0u8; threads];
        let mut due = vec![0 as Nanos; threads];
        let mut waiting = vec![targets.clone(); threads];
        let mut done = vec![false; threads];
        let limit = self.clock.now() + KAFKA_FINAL_LIMIT.as_nanos() as Nanos;
        let mut arrived: Option<Done> = None;
        loop {
            while let Some(finished) = arrived.take().or_else(|| self.done.try_recv().ok()) {
                let thread = finished.thread;
                if finished.f == OpFn::Poll && finished.completion.kind == OpType::Ok {
                    let op = crate::harness::history::Op::new(
                        0,
                        OpType::Ok,
                        Process::Client(finished.process),
                        OpFn::Poll,
                        finished.completion.value.clone(),
                    );
                    let (_, polled) = kafka_max_offsets(&op);
                    waiting[thread]
                        .retain(|key, target| polled.get(key).is_none_or(|seen| seen < target));
                    if waiting[thread].is_empty() {
                        done[thread] = true;
                    }
                }
                self.complete(finished);
            }
            let now = self.clock.now();
            if now >= limit || done.iter().all(|&d| d) {
                break;
            }
            let mut next_due: Option<Nanos> = None;
            for thread in 0..threads {
                if done[thread] || self.threads[thread].busy {
                    continue;
                }
                if due[thread] > now {
                    next_due = Some(next_due.map_or(due[thread], |d: Nanos| d.min(due[thread])));
                    continue;
                }
                let (f, value) = match stage[thread] {
                    0 => (OpFn::Crash, Value::Null),
                    1 => (OpFn::Assign, Value::Array(keys.clone())),
                    _ => (OpFn::Poll, json!([["poll"]])),
                };
                if stage[thread] >= 2 {
                    let gap = self.rng.random_range(0..2 * KAFKA_FINAL_POLL_GAP_NS);
                    due[thread] = now + gap;
                }
                stage[thread] = stage[thread].saturating_add(1).min(2);
                self.invoke(thread, f, value, now, true);
            }
            let until = self.clock.instant(next_due.map_or(limit, |d| d.min(limit)));
            // Completions are taken here, not by `await_completion`, so that each poll's
            // offsets count towards its thread's target.
            arrived = tokio::time::timeout_at(until, self.done.recv())
                .await
                .ok()
                .flatten();
        }
        self.wait_until_idle().await;
    }

    fn free_client(&self) -> Option<usize> {
        self.cursor.pick(|t| !self.threads[t].busy)
    }

    /// A partition start (a shape on every server) or stop (heal), recorded as a nemesis
    /// invocation and its completion. It happens at once.
    fn run_nemesis(&mut self, now: Nanos, start: bool) {
        let (f, invoke_value, completion_value) = if start {
            let shape = Shape::choose(&mut self.nemesis_rng);
            let cut = shape.grudge(&self.plan.nodes, &mut self.nemesis_rng);
            self.network.partition(shape.name(), &cut);
            (
                OpFn::StartPartition,
                json!(shape.name()),
                json!({ "isolated": cut }),
            )
        } else {
            self.network.heal();
            (OpFn::StopPartition, Value::Null, json!("network-healed"))
        };
        tracing::info!(f = f.name(), value = %completion_value, "nemesis");
        self.record(now, OpType::Info, Process::Nemesis, f, invoke_value, false);
        let done_at = self.clock.now();
        self.record(
            done_at,
            OpType::Info,
            Process::Nemesis,
            f,
            completion_value,
            false,
        );
    }

    fn invoke(&mut self, thread: usize, f: OpFn, value: Value, stamp: Nanos, final_read: bool) {
        let reusable = self.workload.reusable_clients();
        let state = &mut self.threads[thread];
        let process = state.process;
        state.busy = true;
        // A thread opens a client on its first op and on the first op under a new process; the
        // old one stays registered until then, so late replies to it are still received.
        let client = match state.client.take() {
            Some((opened_for, client)) if opened_for == process || reusable => client,
            _ => Session::open(&self.network),
        };
        let node = state.node.clone();
        self.record(
            stamp,
            OpType::Invoke,
            Process::Client(process),
            f,
            value.clone(),
            final_read,
        );
        self.progress.inc(1);
        let workload = Arc::clone(&self.workload);
        let done = self.done_sender.clone();
        tokio::spawn(
            async move {
                let mut client = client;
                let completion = workload
                    .execute(f, &value, &mut client, &node, final_read)
                    .await;
                let finished = Done {
                    thread,
                    process,
                    client,
                    f,
                    sent: value,
                    final_read,
                    completion,
                };
                // The interpreter outlives every op it spawned; if it is gone, so is the test.
                if done.send(finished).is_err() {
                    tracing::debug!("completion after the interpreter stopped");
                }
            }
            .in_current_span(),
        );
    }

    fn take_completions(&mut self) {
        while let Ok(done) = self.done.try_recv() {
            self.complete(done);
        }
    }

    /// Waits for one completion, or until `until` (relative ns) if given. True if one came.
    async fn await_completion(&mut self, until: Option<Nanos>) -> bool {
        let done = match until {
            Some(until) => {
                let deadline = self.clock.instant(until);
                tokio::time::timeout_at(deadline, self.done.recv())
                    .await
                    .ok()
                    .flatten()
            }
            None => self.done.recv().await,
        };
        match done {
            Some(done) => {
                self.complete(done);
                true
            }
            None => false,
        }
    }

    async fn wait_until_idle(&mut self) {
        while self.threads.iter().any(|t| t.busy) {
            if !self.await_completion(None).await {
                return;
            }
        }
    }

    fn complete(&mut self, done: Done) {
        let now = self.clock.now();
        let Completion {
            kind,
            value,
            error,
            exception,
        } = done.completion;
        // A completed broadcast carries the value it added, for the set checker.
        let value = if done.f == OpFn::Broadcast {
            done.sent
        } else {
            value
        };
        let op = Op {
            index: 0,
            time: now,
            kind,
            process: Process::Client(done.process),
            f: done.f,
            value,
            error,
            exception,
            final_read: done.final_read,
        };
        self.chooser.observe(&op);
        self.history.push(op);
        let thread = &mut self.threads[done.thread];
        thread.busy = false;
        thread.client = Some((done.process, done.client));
        if kind == OpType::Info {
            thread.process += self.plan.concurrency as u64;
        }
    }

    fn record(
        &mut self,
        time: Nanos,
        kind: OpType,
        process: Process,
        f: OpFn,
        value: Value,
        final_read: bool,
    ) {
        self.history.push(Op {
            final_read,
            ..Op::new(time, kind, process, f, value)
        });
    }
}
