//! The load generator: calls arrive at the scenario's rate (constant, or
//! Poisson from the run's `load` stream). Each goes to one load target,
//! drawn by share from the same stream (no draw with a single target), and
//! is handed to that target's client node, whose machine routes it to one
//! of the target service's instances: no call reaches a service the load
//! does not name.

use rand::RngExt as _;
use vigil_core::envelope::Input;
use vigil_core::machine::Machine;
use vigil_core::{Duration, NodeId};

use crate::kernel::Event;
use crate::scenario::LoadShape;

use super::Simulation;
use super::host::HostState;

impl Simulation<'_> {
    /// Time to the next call of the load generator.
    pub(super) fn next_arrival_gap(&mut self) -> Duration {
        let Some(load) = &self.scenario.load else { return Duration::MAX };
        let mean_s = 1.0 / load.rate_per_sec;
        let gap_s = match load.shape {
            LoadShape::Constant => mean_s,
            LoadShape::Poisson => {
                let u: f64 = self.load_rng.random();
                -libm::log(1.0 - u) * mean_s
            }
        };
        // At least a nanosecond, so arrivals always move time forward.
        Duration::from_nanos(((gap_s * 1e9) as u64).max(1))
    }

    pub(super) fn arrival(&mut self) {
        let scenario = self.scenario;
        let Some(load) = &scenario.load else { return };
        let target = if load.targets.len() > 1 { load.pick(self.load_rng.random()) } else { 0 };
        let client = NodeId(scenario.client_nodes().start + target as u32);
        let id = self.next_call;
        self.next_call += 1;
        let slot = &mut self.nodes[client.index()];
        if slot.state == HostState::Up {
            let local = slot.clock.local(self.kernel.now());
            if let Some(m) = slot.machine.as_mut() {
                m.handle(local, Input::Call { id });
            }
            self.drain(client);
        }
        let gap = self.next_arrival_gap();
        self.kernel.schedule(self.kernel.now() + gap, Event::Arrival);
    }
}
