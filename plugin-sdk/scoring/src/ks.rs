//! The two-sample Kolmogorov-Smirnov test as scipy's `ks_2samp` (two-sided).
