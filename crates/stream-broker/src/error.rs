//! Typed errors. `Display` messages are short and lowercase.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// A builder setting the broker cannot work with, or a data directory it cannot open.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// No data directory was given.
    #[error("no data directory given")]
    MissingDataDir,
    /// A setting is out of range.
    #[error("invalid {name}: {reason}")]
    Invalid {
        /// The setting.
        name: &'static str,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The default topic settings were rejected by keel-stream.
    #[error("invalid default topic settings")]
    TopicDefaults(#[source] keel_stream::BuildError),
    /// Opening or recovering the data directory failed.
    #[error("cannot open data directory {path:?}")]
    Open {
        /// The directory (or file in it) that failed.
        path: PathBuf,
        /// Why.
        #[source]
        source: BrokerError,
    },
}

/// Errors of a running broker: binding, storage and topic administration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The file system failed.
    #[error("i/o error")]
    Io(#[from] io::Error),
    /// The event log failed.
    #[error("log error")]
    Log(#[from] keel_stream::StreamError),
    /// A stored file (topic settings, committed offsets, producer ids) does not parse.
    #[error("corrupt broker file {path:?}: {reason}")]
    CorruptFile {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A topic name outside Kafka's rule (1–249 of `[A-Za-z0-9._-]`, not `.` or `..`).
    #[error("invalid topic name {0:?}")]
    InvalidTopicName(String),
    /// The topic exists already.
    #[error("topic {0:?} already exists")]
    TopicExists(String),
    /// No such topic.
    #[error("unknown topic {0:?}")]
    UnknownTopic(String),
    /// A topic setting was rejected (name and reason).
    #[error("invalid topic config {name}: {reason}")]
    InvalidTopicConfig {
        /// The Kafka config name, e.g. `retention.ms`.
        name: String,
        /// Why.
        reason: String,
    },
    /// The broker's topic limit was reached.
    #[error("too many topics (limit {0})")]
    TooManyTopics(usize),
}

/// Why a request frame was refused. The connection that sent it is closed (with a log
/// line); no other connection is affected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix is negative or above the broker's `max_request_bytes`; nothing
    /// was allocated for it.
    #[error("frame length {length} outside 8..={max}")]
    BadLength {
        /// The declared length.
        length: i64,
        /// The limit.
        max: usize,
    },
    /// An API key this broker does not know.
    #[error("unknown api key {api_key}")]
    UnknownApi {
        /// The key.
        api_key: i16,
    },
    /// A known API at a version this broker does not serve.
    #[error("unsupported version {version} of {api}")]
    UnsupportedVersion {
        /// The API's name.
        api: &'static str,
        /// The requested version.
        version: i16,
    },
    /// The header or body did not decode.
    #[error("malformed {api} v{version} request: {reason}")]
    Malformed {
        /// The API's name (or `header`).
        api: &'static str,
        /// The requested version.
        version: i16,
        /// The decoder's message.
        reason: String,
    },
}
