//! Multi-node and end-to-end tests for compaktor: the helpers they share will live here.
