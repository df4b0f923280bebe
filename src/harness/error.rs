//! Why a test could not be run to a verdict. Maelstrom reports these as a crashed test (exit 255),
//! not as an invalid one: the node never got to be judged.

use std::path::PathBuf;

use thiserror::Error;

/// A test that crashed instead of reaching a verdict.
#[derive(Debug, Error)]
pub enum HarnessError {
    /// The node binary could not be found.
    #[error("node binary {path} not found: {source}")]
    BinaryNotFound {
        /// The path as given.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// A node process could not be started, or its pipes were missing.
    #[error("could not start {bin} for {node}: {source}")]
    Spawn {
        /// The node id.
        node: String,
        /// The binary.
        bin: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A file or folder of the run's store could not be written.
    #[error("writing {path}: {source}")]
    Store {
        /// The file or folder.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A node did not answer `init` with `init_ok` in time.
    #[error("{node} did not answer init: {reason}")]
    Init {
        /// The node id.
        node: String,
        /// What happened instead.
        reason: String,
    },
    /// A node failed the workload's setup request (broadcast's `topology`).
    #[error("{node} failed the {request} setup: {reason}")]
    Setup {
        /// The node id.
        node: String,
        /// The setup reply type that was expected.
        request: String,
        /// What came instead.
        reason: String,
    },
    /// Nodes stopped before the test ended: one line per node, with the tail of its stderr.
    #[error("{}", .0.join("\n"))]
    Crashed(Vec<String>),
}
