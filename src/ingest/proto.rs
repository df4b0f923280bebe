//! The generated protocol types, client and server of `proto/ingest.proto`
//! (package `sluicegate.ingest.v1`).

#![allow(missing_docs)]

tonic::include_proto!("sluicegate.ingest.v1");

/// The encoded file descriptor set of `proto/ingest.proto`, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("ingest_descriptor");
