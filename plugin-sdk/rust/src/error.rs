//! The error a plugin returns to the host.

use std::fmt;

use crate::__private::method_world::lethe::plugin::types::PluginError as WitError;

/// A plugin's own failure. It crosses to the host as a typed value; a crash (a trap) is
/// reported by the host separately and never looks like this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginError {
    /// The configuration was rejected.
    InvalidConfig(String),
    /// An input did not have the shape or content the plugin expects.
    InvalidInput(String),
    /// The host refused a request: a split a method may not see, an exhausted step budget.
    Denied(String),
    /// Any other failure.
    Failed(String),
}

/// The result type of plugin code.
pub type Result<T, E = PluginError> = std::result::Result<T, E>;

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidConfig(m) => write!(f, "invalid config: {m}"),
            Self::InvalidInput(m) => write!(f, "invalid input: {m}"),
            Self::Denied(m) => write!(f, "denied: {m}"),
            Self::Failed(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for PluginError {}

impl From<WitError> for PluginError {
    fn from(e: WitError) -> Self {
        match e {
            WitError::InvalidConfig(m) => Self::InvalidConfig(m),
            WitError::InvalidInput(m) => Self::InvalidInput(m),
            WitError::Denied(m) => Self::Denied(m),
            WitError::Failed(m) => Self::Failed(m),
        }
    }
}

impl From<PluginError> for WitError {
    fn from(e: PluginError) -> Self {
        match e {
            PluginError::InvalidConfig(m) => Self::InvalidConfig(m),
            PluginError::InvalidInput(m) => Self::InvalidInput(m),
            PluginError::Denied(m) => Self::Denied(m),
            PluginError::Failed(m) => Self::Failed(m),
        }
    }
}

/// Parse a plugin's JSON configuration into its typed form.
pub(crate) fn parse_config<C: serde::de::DeserializeOwned>(config: &str) -> Result<C> {
    // An empty string means "all defaults", so that a host may pass nothing.
    let text = if config.trim().is_empty() {
        "{}"
    } else {
        config
    };
    serde_json::from_str(text).map_err(|e| PluginError::InvalidConfig(e.to_string()))
}

/// The JSON Schema of a configuration type, as a string.
pub(crate) fn schema_of<C: schemars::JsonSchema>() -> String {
    serde_json::to_string(&schemars::schema_for!(C)).unwrap_or_else(|_| "{}".to_owned())
}
