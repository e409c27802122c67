//! The load generator: the client's calls arrive at the scenario's rate
//! (constant, or Poisson from the run's `load` stream), each handed to the
//! client node's machine, which routes it to an instance.

use rand::RngExt as _;
use vigil_core::Duration;
use vigil_core::envelope::Input;
use vigil_core::machine::Machine;

use crate::kernel::Event;
use crate::scenario::LoadShape;

use super::Simulation;
use super::host::HostState;

impl Simulation<'_> {
    /// Time to the next call of the load generator.
    pub(super) fn next_arrival_gap(&mut self) -> Duration {
        let Some(load) = self.scenario.load else { return Duration::MAX };
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
        let Some(client) = self.scenario.client_node() else { return };
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
