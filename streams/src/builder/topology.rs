//! The order in which a graph's nodes are materialised, and its cycles:
//! a depth-first search over plain indices, no streams involved.

/// How to materialise a graph: upstream nodes first, and which edges close
/// a cycle (those get a buffer of their own, attached once their upstream exists).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Every node, each after all nodes it takes elements from (feedback edges aside).
    pub(crate) order: Vec<usize>,
    /// Per edge, whether it closes a cycle.
    pub(crate) feedback: Vec<bool>,
}

/// Plans `nodes` nodes joined by `edges` (`(from, to)` node indices).
///
/// # Errors
/// Without `allow_cycles`, the first cycle found: its nodes in edge order,
/// the first repeated at the end.
pub(crate) fn plan(nodes: usize, edges: &[(usize, usize)], allow_cycles: bool) -> Result<Plan, Vec<usize>> {
    let mut next: Vec<Vec<(usize, usize)>> = vec![Vec::new(); nodes];
    for (e, &(from, to)) in edges.iter().enumerate() {
        next[from].push((e, to));
    }
    const NEW: u8 = 0;
    const OPEN: u8 = 1;
    const DONE: u8 = 2;
    let mut color = vec![NEW; nodes];
    let mut finished = Vec::with_capacity(nodes);
    let mut feedback = vec![false; edges.len()];
    for root in 0..nodes {
        if color[root] != NEW {
            continue;
        }
        color[root] = OPEN;
        // (node, index of the next edge to follow out of it)
        let mut path = vec![(root, 0usize)];
        while let Some(&mut (node, ref mut i)) = path.last_mut() {
            let Some(&(edge, to)) = next[node].get(*i) else {
                color[node] = DONE;
                finished.push(node);
                path.pop();
                continue;
            };
            *i += 1;
            match color[to] {
                NEW => {
                    color[to] = OPEN;
                    path.push((to, 0));
                }
                OPEN if !allow_cycles => {
                    // `to` is on the current path: from there to here is the cycle.
                    let start = path.iter().position(|&(n, _)| n == to).unwrap_or(0);
                    let mut cycle: Vec<usize> = path[start..].iter().map(|&(n, _)| n).collect();
                    cycle.push(to);
                    return Err(cycle);
                }
                OPEN => feedback[edge] = true,
                _ => {}
            }
        }
    }
    // Without the edges back onto the path, every edge leads to a node
    // that finished earlier: reversed finishing order is upstream first.
    finished.reverse();
    Ok(Plan {
        order: finished,
        feedback,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(plan: &Plan, node: usize) -> usize {
        plan.order.iter().position(|&n| n == node).unwrap()
    }

    #[test]
    fn a_diamond_is_ordered_upstream_first() {
        // 0 -> 1 -> 3, 0 -> 2 -> 3, and 4 alone.
        let edges = [(0, 1), (0, 2), (1, 3), (2, 3)];
        let plan = plan(5, &edges, false).unwrap();
        assert_eq!(plan.order.len(), 5);
        for (from, to) in edges {
            assert!(position(&plan, from) < position(&plan, to), "{plan:?}");
        }
        assert_eq!(plan.feedback, [false; 4]);
    }

    #[test]
    fn nodes_added_downstream_first_still_come_out_upstream_first() {
        let edges = [(2, 1), (1, 0)];
        assert_eq!(plan(3, &edges, false).unwrap().order, [2, 1, 0]);
    }

    #[test]
    fn a_cycle_is_reported_with_its_nodes_in_order() {
        // 0 -> 1 -> 2 -> 3 -> 1
        let edges = [(0, 1), (1, 2), (2, 3), (3, 1)];
        assert_eq!(plan(4, &edges, false), Err(vec![1, 2, 3, 1]));
    }

    #[test]
    fn a_self_loop_is_a_cycle() {
        assert_eq!(plan(1, &[(0, 0)], false), Err(vec![0, 0]));
    }

    #[test]
    fn an_allowed_cycle_is_broken_at_its_feedback_edge() {
        let edges = [(0, 1), (1, 2), (2, 3), (3, 1)];
        let plan = plan(4, &edges, true).unwrap();
        assert_eq!(plan.feedback, [false, false, false, true]);
        for (e, (from, to)) in edges.into_iter().enumerate() {
            if !plan.feedback[e] {
                assert!(position(&plan, from) < position(&plan, to), "{plan:?}");
            }
        }
    }

    #[test]
    fn shared_downstream_is_not_a_cycle() {
        // Two paths into one node (a merge) are fine.
        let edges = [(0, 2), (1, 2), (0, 1)];
        let plan = plan(3, &edges, false).unwrap();
        assert_eq!(plan.order, [0, 1, 2]);
    }
}
