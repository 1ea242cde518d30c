//! Per-partition log storage (being written).
