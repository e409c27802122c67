//! The service dependency graph, for root-cause-first recovery.
//!
//! A [`petgraph`] `DiGraph` with an edge from each service to each service
//! it depends on. Built once from the configuration and never changed, so
//! the transitive dependencies of every service are computed at
//! construction (depth-first search) and kept sorted.
//!
//! A cycle is rejected, naming its services in order: in a cycle no service
//! can be recovered "first", and the root-cause rule would hold every
//! member of it for ever.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::Dfs;

use crate::id::ServiceId;

use super::RecoveryConfigError;

/// Services and their dependencies, validated acyclic. The petgraph graph
/// itself is dropped once the closure is computed: nothing else asks it.
#[derive(Clone, Debug)]
pub(crate) struct ServiceGraph {
    node_of: BTreeMap<ServiceId, NodeIndex>,
    /// Per node index: every service reachable through dependency edges,
    /// itself excluded, sorted.
    transitive: Vec<Vec<ServiceId>>,
}

impl ServiceGraph {
    /// Build the graph of `services`, each with its direct dependencies.
    pub(crate) fn new<'a>(
        services: impl IntoIterator<Item = (ServiceId, &'a [ServiceId])> + Clone,
    ) -> Result<Self, RecoveryConfigError> {
        let mut graph = DiGraph::new();
        let mut node_of = BTreeMap::new();
        for (service, _) in services.clone() {
            if node_of.insert(service, graph.add_node(service)).is_some() {
                return Err(RecoveryConfigError::DuplicateService(service));
            }
        }
        for (service, deps) in services {
            let from = node_of[&service];
            for &dependency in deps {
                let Some(&to) = node_of.get(&dependency) else {
                    return Err(RecoveryConfigError::UnknownDependency { service, dependency });
                };
                graph.update_edge(from, to, ());
            }
        }
        if let Some(cycle) = find_cycle(&graph) {
            return Err(RecoveryConfigError::Cycle { cycle });
        }
        let transitive = graph
            .node_indices()
            .map(|start| {
                let mut reached = Vec::new();
                let mut dfs = Dfs::new(&graph, start);
                while let Some(node) = dfs.next(&graph) {
                    if node != start {
                        reached.push(graph[node]);
                    }
                }
                reached.sort_unstable();
                reached
            })
            .collect();
        Ok(ServiceGraph { node_of, transitive })
    }

    /// Every service `service` depends on, directly or not, sorted.
    pub(crate) fn dependencies_of(&self, service: ServiceId) -> &[ServiceId] {
        self.node_of.get(&service).map_or(&[], |n| &self.transitive[n.index()])
    }

    /// The root cause of `service`'s trouble among its dependencies: an
    /// impaired dependency with no impaired dependency of its own (the
    /// smallest id if several), or `None` when no dependency is impaired.
    pub(crate) fn root_cause(
        &self,
        service: ServiceId,
        impaired: impl Fn(ServiceId) -> bool,
    ) -> Option<ServiceId> {
        self.dependencies_of(service)
            .iter()
            .copied()
            .filter(|&d| impaired(d))
            .find(|&d| !self.dependencies_of(d).iter().any(|&dd| impaired(dd)))
    }

    /// Number of services.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.node_of.len()
    }
}

/// One cycle of `graph`, in edge order, or `None` if it is acyclic.
fn find_cycle(graph: &DiGraph<ServiceId, ()>) -> Option<Vec<ServiceId>> {
    // Self-loops first: a strongly connected component of one node is a
    // cycle only if it has one.
    if let Some(node) = graph.node_indices().find(|&n| graph.contains_edge(n, n)) {
        return Some(vec![graph[node]]);
    }
    let component = tarjan_scc(graph)
        .into_iter()
        .filter(|c| c.len() > 1)
        .min_by_key(|c| c.iter().map(|&n| graph[n]).min().expect("a component is never empty"))?;
    let members: BTreeSet<NodeIndex> = component.iter().copied().collect();
    let start = *component.iter().min_by_key(|&&n| graph[n]).expect("a component is never empty");
    // Breadth-first search inside the component from `start` back to it:
    // every member reaches every other, so the path exists.
    let mut parent: BTreeMap<NodeIndex, NodeIndex> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    loop {
        let node = queue.pop_front().expect("every member of a strongly connected component reaches `start`");
        let mut next: Vec<NodeIndex> = graph.neighbors(node).filter(|n| members.contains(n)).collect();
        next.sort_by_key(|&n| graph[n]);
        for n in next {
            if n == start {
                let mut path = vec![graph[node]];
                let mut at = node;
                while at != start {
                    at = parent[&at];
                    path.push(graph[at]);
                }
                path.reverse();
                return Some(path);
            }
            if let std::collections::btree_map::Entry::Vacant(e) = parent.entry(n) {
                e.insert(node);
                queue.push_back(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u32) -> ServiceId {
        ServiceId(n)
    }

    fn build(spec: &[(u32, &[u32])]) -> Result<ServiceGraph, RecoveryConfigError> {
        let owned: Vec<(ServiceId, Vec<ServiceId>)> =
            spec.iter().map(|(a, deps)| (s(*a), deps.iter().map(|&d| s(d)).collect())).collect();
        ServiceGraph::new(owned.iter().map(|(a, d)| (*a, d.as_slice())))
    }

    #[test]
    fn transitive_dependencies_and_root_cause() {
        // 0 -> 1 -> 2, 0 -> 3
        let g = build(&[(0, &[1, 3]), (1, &[2]), (2, &[]), (3, &[])]).expect("acyclic");
        assert_eq!(g.len(), 4);
        assert_eq!(g.dependencies_of(s(0)), &[s(1), s(2), s(3)]);
        assert_eq!(g.dependencies_of(s(2)), &[] as &[ServiceId]);
        // 1 and 2 impaired: 2 is the root.
        assert_eq!(g.root_cause(s(0), |x| x == s(1) || x == s(2)), Some(s(2)));
        assert_eq!(g.root_cause(s(0), |x| x == s(3)), Some(s(3)));
        assert_eq!(g.root_cause(s(2), |_| true), None);
    }

    #[test]
    fn cycles_are_named_in_order() {
        let err = build(&[(0, &[1]), (1, &[2]), (2, &[0])]).expect_err("cyclic");
        assert_eq!(err, RecoveryConfigError::Cycle { cycle: vec![s(0), s(1), s(2)] });
        assert_eq!(
            err.to_string(),
            "the service dependency graph has a cycle: service#0 -> service#1 -> service#2 -> service#0"
        );
        let err = build(&[(5, &[5])]).expect_err("self loop");
        assert_eq!(err, RecoveryConfigError::Cycle { cycle: vec![s(5)] });
    }

    #[test]
    fn the_cycle_named_is_the_shortest_through_the_smallest_service() {
        // Two cycles through 0 of three services (0 -> 1 -> 3 -> 0 and
        // 0 -> 2 -> 3 -> 0) and one of two (5 <-> 6) elsewhere: the
        // component of the smallest service is named, from it, by the
        // shortest way back, ties going to the smaller ids.
        let cycle = RecoveryConfigError::Cycle { cycle: vec![s(0), s(1), s(3)] };
        let spec: &[(u32, &[u32])] = &[(6, &[5]), (5, &[6]), (0, &[2, 1]), (2, &[3]), (1, &[3]), (3, &[0])];
        assert_eq!(build(spec).expect_err("cyclic"), cycle);
        // Neither the order of declarations nor of dependencies matters.
        let reordered: &[(u32, &[u32])] =
            &[(3, &[0]), (1, &[3]), (2, &[3]), (0, &[1, 2]), (5, &[6]), (6, &[5])];
        assert_eq!(build(reordered).expect_err("cyclic"), cycle);
    }

    #[test]
    fn unknown_and_duplicate_services_are_rejected() {
        assert_eq!(
            build(&[(0, &[9])]).expect_err("unknown"),
            RecoveryConfigError::UnknownDependency { service: s(0), dependency: s(9) }
        );
        assert_eq!(
            build(&[(0, &[]), (0, &[])]).expect_err("dup"),
            RecoveryConfigError::DuplicateService(s(0))
        );
    }
}
