//! Plain data shared across Lethe: plugin manifests, observations, result rows.
