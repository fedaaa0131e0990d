//! Gossip membership and cluster-wide routers for compaktor: not built yet (a placeholder).
