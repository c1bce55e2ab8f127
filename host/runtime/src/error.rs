//! What can go wrong with a plugin, layered: the component itself, the sandbox, the plugin's
//! own typed error. Every message names the plugin.

/// A failure of a plugin or of the host running it.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The bytes are not a valid WebAssembly component.
    #[error("plugin {plugin}: not a valid component: {reason}")]
    Malformed {
        /// The plugin's file or name.
        plugin: String,
        /// What is wrong.
        reason: String,
    },
    /// The component was built against an interface version this host does not support.
    #[error("plugin {plugin}: built against lethe:plugin@{found}; this host supports {supported}")]
    ApiVersion {
        /// The plugin's file or name.
        plugin: String,
        /// The version it was built against (or what it exports instead).
        found: String,
        /// The supported versions.
        supported: String,
    },
    /// The manifest the plugin returned is unusable.
    #[error("plugin {plugin}: bad manifest: {reason}")]
    Manifest {
        /// The plugin's label.
        plugin: String,
        /// What is wrong.
        reason: String,
    },
    /// The configuration does not validate against the plugin's schema.
    #[error("plugin {plugin}: invalid config: {reason}")]
    Config {
        /// The plugin's label.
        plugin: String,
        /// Every violation, with its JSON path.
        reason: String,
    },
    /// The plugin crashed or was stopped by the sandbox (trap, fuel, memory, time).
    #[error("plugin {plugin} trapped during {call}: {reason}")]
    Trap {
        /// The plugin's label.
        plugin: String,
        /// The exported function that was running.
        call: String,
        /// What the sandbox says, with the plugin's panic message when it printed one.
        reason: String,
    },
    /// The plugin returned its own typed error.
    #[error("plugin {plugin} failed in {call}: {error}")]
    Plugin {
        /// The plugin's label.
        plugin: String,
        /// The exported function.
        call: String,
        /// The plugin's error.
        error: PluginFailure,
    },
    /// The host itself failed (model or tensor error while serving the plugin).
    #[error("plugin {plugin}: host error: {reason}")]
    Host {
        /// The plugin's label.
        plugin: String,
        /// What failed.
        reason: String,
    },
}

/// A plugin's typed error, as it crossed the boundary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginFailure {
    /// The plugin rejected its configuration.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// The plugin rejected an input.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A request of the plugin was denied by the host.
    #[error("denied: {0}")]
    Denied(String),
    /// Anything else.
    #[error("{0}")]
    Failed(String),
}

impl From<crate::bindings::method::lethe::plugin::types::PluginError> for PluginFailure {
    fn from(e: crate::bindings::method::lethe::plugin::types::PluginError) -> Self {
        use crate::bindings::method::lethe::plugin::types::PluginError as E;
        match e {
            E::InvalidConfig(m) => Self::InvalidConfig(m),
            E::InvalidInput(m) => Self::InvalidInput(m),
            E::Denied(m) => Self::Denied(m),
            E::Failed(m) => Self::Failed(m),
        }
    }
}
