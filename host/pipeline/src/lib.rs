//! The Lethe pipeline: learn, unlearn, observe, score.
