//! Who is in the fleet: the shared state every controller reads.
//!
//! Per instance id, the node it runs on (where probes and endpoint
//! updates point), its service, and whether its class has active checks.
//! Only the composition writes it, when an instance joins, re-registers or
//! leaves; controllers read it and keep anything else they need in their
//! own state. Dense by instance id, like the failure detector.

use crate::id::{InstanceId, NodeId, ServiceId};

/// The fleet's membership, as the control plane knows it.
#[derive(Debug, Clone, Default)]
pub struct Roster {
    node: Vec<Option<NodeId>>,
    service: Vec<Option<ServiceId>>,
    monitored: Vec<bool>,
}

impl Roster {
    /// The node a registered instance runs on; `None` once it left.
    pub fn node(&self, instance: InstanceId) -> Option<NodeId> {
        self.node.get(instance.index()).copied().flatten()
    }

    /// The service of a registered instance; `None` once it left.
    pub fn service(&self, instance: InstanceId) -> Option<ServiceId> {
        self.service.get(instance.index()).copied().flatten()
    }

    /// Whether the instance's class has active checks (the health monitor
    /// speaks for it; otherwise heartbeat liveness alone does).
    pub fn monitored(&self, instance: InstanceId) -> bool {
        self.monitored.get(instance.index()).copied().unwrap_or(false)
    }

    /// Slots: one more than the highest instance id ever registered.
    pub fn slots(&self) -> usize {
        self.node.len()
    }

    /// Record a registration; returns whether the instance is new here
    /// (it had no service yet: it joins).
    pub(super) fn place(
        &mut self,
        instance: InstanceId,
        node: NodeId,
        service: ServiceId,
        monitored: bool,
    ) -> bool {
        let i = instance.index();
        if self.node.len() <= i {
            self.node.resize(i + 1, None);
            self.service.resize(i + 1, None);
            self.monitored.resize(i + 1, false);
        }
        let joins = self.service[i].is_none();
        if joins {
            self.service[i] = Some(service);
        }
        self.node[i] = Some(node);
        self.monitored[i] = monitored;
        joins
    }

    /// Forget where an instance runs and its service (it left). Whether it
    /// had checks is kept: a verdict about it still in flight in this
    /// round is read the way it was produced.
    pub(super) fn remove(&mut self, instance: InstanceId) {
        let i = instance.index();
        if let Some(s) = self.service.get_mut(i) {
            *s = None;
        }
        if let Some(n) = self.node.get_mut(i) {
            *n = None;
        }
    }
}
