//! One connection per pair of nodes: which connection to keep when both
//! nodes dial each other at once, or a peer dials again.
//!
//! Both nodes apply the same rule to the same facts, so they keep the same
//! connection without a further round trip: a newer connection dialed by
//! the same side replaces the older one (the dialer only dials when it
//! believes the old one dead); between connections dialed by different
//! sides, the one dialed by the node with the lower root path wins.

/// Which node dialed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialer {
    Us,
    Them,
}

/// What this node has towards the peer when a new connection shows up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Current {
    /// Nothing, and not dialing.
    Idle,
    /// A dial of ours is under way.
    Dialing,
    /// A working connection, dialed by this side.
    Up(Dialer),
}

/// Whether to keep a new connection (dialed by `candidate`), dropping the
/// current one; `false` means close the new one.
pub(crate) fn keep_new(current: Current, candidate: Dialer, our_root: &str, their_root: &str) -> bool {
    let lower = if our_root < their_root {
        Dialer::Us
    } else {
        Dialer::Them
    };
    match current {
        Current::Idle => true,
        // Both dialed: the other node applies this rule to our dial.
        Current::Dialing => candidate == Dialer::Us || lower == Dialer::Them,
        Current::Up(dialer) if dialer == candidate => true,
        Current::Up(_) => candidate == lower,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "compaktor://a@127.0.0.1:1/";
    const B: &str = "compaktor://b@127.0.0.1:2/";

    /// The decision node `me` takes about a connection dialed by `dialer`.
    fn decide(me: &str, other: &str, current: Current, dialer_is_me: bool) -> bool {
        let candidate = if dialer_is_me { Dialer::Us } else { Dialer::Them };
        keep_new(current, candidate, me, other)
    }

    #[test]
    fn a_first_connection_is_kept_by_either_side() {
        assert!(decide(A, B, Current::Idle, false));
        assert!(decide(B, A, Current::Idle, false));
        assert!(decide(A, B, Current::Dialing, true));
    }

    #[test]
    fn when_both_dial_at_once_both_keep_the_lower_nodes_connection() {
        // a's connection, seen by b (dialing) and by a (its own dial).
        assert!(decide(B, A, Current::Dialing, false));
        assert!(decide(A, B, Current::Dialing, true));
        // b's connection, seen by a (dialing): refused.
        assert!(!decide(A, B, Current::Dialing, false));
        // ... and by b after a's connection was set up there.
        assert!(!decide(B, A, Current::Up(Dialer::Them), true));
        // ... or by a after its own connection was set up.
        assert!(!decide(A, B, Current::Up(Dialer::Us), false));
    }

    #[test]
    fn a_redial_by_the_same_side_replaces_the_old_connection() {
        assert!(decide(B, A, Current::Up(Dialer::Them), false));
        assert!(decide(A, B, Current::Up(Dialer::Them), false));
        assert!(decide(A, B, Current::Up(Dialer::Us), true));
    }

    #[test]
    fn the_higher_node_may_replace_its_own_connection_with_the_lower_nodes() {
        assert!(decide(B, A, Current::Up(Dialer::Us), false));
        assert!(!decide(A, B, Current::Up(Dialer::Us), false));
    }
}
