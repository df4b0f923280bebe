//! The Maelstrom node binary: run it as `maelstrom test -w broadcast --bin sluicegate-node ...`.
fn main() -> std::process::ExitCode {
    sluicegate::node::main()
}
