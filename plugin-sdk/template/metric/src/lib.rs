//! Template for a third-party Lethe metric.
