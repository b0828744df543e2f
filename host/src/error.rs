//! Start-up errors of the host. Each names the file, component or variable at fault, since the
//! person reading it is fixing a manifest or an environment.

use std::path::PathBuf;

/// Why the host could not start (or stop cleanly).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The manifest could not be read or is not one this host understands.
    #[error("manifest {path}: {message}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A required application variable has no value.
    #[error(
        "required variable `{name}` is not set: set {env} (or its short form) in the \
         environment or in .env"
    )]
    MissingVariable {
        /// The variable.
        name: String,
        /// Its environment name.
        env: String,
    },
    /// The `.env` file does not parse.
    #[error("{path}: {message}")]
    DotEnv {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A component's configuration is inconsistent (variables, stores, allowed hosts).
    #[error("component `{component}`: {message}")]
    Component {
        /// The component id.
        component: String,
        /// What is wrong.
        message: String,
    },
    /// A component's `.wasm` is missing or does not load.
    #[error("component `{component}`: cannot load {path}: {message}")]
    Source {
        /// The component id.
        component: String,
        /// The `.wasm` file.
        path: PathBuf,
        /// What is wrong (a missing file suggests building the components first).
        message: String,
    },
    /// The key-value backends could not be opened.
    #[error("key-value stores: {0}")]
    Store(#[from] mcp_auth_kv::Error),
    /// The certificate authorities or client certificates of outbound HTTPS could not be
    /// loaded (`[[client_tls]]` in the runtime config, `--outbound-ca-file`, the system store).
    #[error("outbound TLS: {0}")]
    OutboundTls(String),
    /// The wasmtime engine or linker could not be set up.
    #[error("runtime: {0}")]
    Runtime(String),
    /// Socket or file I/O.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn runtime(e: impl std::fmt::Display) -> Self {
        Error::Runtime(e.to_string())
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}
