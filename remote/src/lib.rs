//! Remoting over QUIC for compaktor: not built yet (a placeholder until the remoting issue lands).
