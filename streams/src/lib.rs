//! Backpressured reactive streams on compaktor actors: not built yet (a placeholder until the streams issue lands).
