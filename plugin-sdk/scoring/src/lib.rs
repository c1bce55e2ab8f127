//! Pure scoring functions shared by metric plugins, with no dependency on the plugin interface,
//! so a metric crate can link them into its component (a plugin crate cannot link another
//! plugin crate: both would export the metric interface).

pub mod auc;
pub mod bleu;
pub mod ks;
pub mod memorization;
pub mod mia;
pub mod rouge;
pub mod truth_ratio;
pub mod zlib;
