//! (placeholder, replaced by the node issue)
/// Entry point of the node binary.
pub fn main() -> std::process::ExitCode {
    std::process::ExitCode::FAILURE
}
