//! Tests of the harness's parts that are not public: the checkers against hand-built histories,
//! the network against in-memory nodes, and whole runs whose histories are checked piece by
//! piece.

mod check;
mod kv_check;
mod network;
mod runs;
