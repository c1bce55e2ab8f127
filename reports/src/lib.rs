//! Aggregation of Lethe results with polars: Parquet, leaderboards.
