//! How a refusal for lack of room looks to the node refused. Over TCP the dialer's handshake
//! completes before the node it dialed decides it has no room; it reads the `Goodbye` after. The
//! simulator must show it the same way (a link that comes up, then closes with a goodbye, which
//! membership reads as "alive but busy"), not as a failed dial: membership treats the two
//! differently, and a difference there decides how a large network behaves around its seed.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use dotray_membership::core::Config;
use dotray_node::core::Event;
use dotray_sim::{NetworkConfig, Sim};

#[test]
fn a_join_refused_for_lack_of_room_comes_up_then_closes_with_a_goodbye() {
    // The seed takes one connection from a stranger at a time; two nodes join through it at once.
    // Every step takes the same time, so the second join arrives while the first still holds the
    // seed's one slot, whatever the run's seed.
    let config = Config { max_transient_connections: 1, ..Config::default() };
    let step = Duration::from_millis(10);
    let network = NetworkConfig { latency_min: step, latency_max: step, ..NetworkConfig::default() };
    let mut sim = Sim::new(dotray_sim::seed_from_env(), network, config);
    let seed = sim.add_node(Vec::new());
    let seed_id = sim.nodes[seed].info.id;
    let events: Rc<RefCell<Vec<(usize, Event)>>> = Rc::default();
    let log = events.clone();
    sim.set_event_hook(Box::new(move |node, _, event| log.borrow_mut().push((node, event.clone()))));
    let joiners = [sim.add_node(vec![Sim::addr_of(seed)]), sim.add_node(vec![Sim::addr_of(seed)])];
    sim.run_for(Duration::from_secs(10));

    assert!(sim.stats.refused >= 1, "one of the two joins was refused");
    // The refused node saw its join's link come up (a join makes the contact a neighbour at once)
    // and then go down; it joined again after a pause, so both end up linked to the seed.
    let events = events.borrow();
    let seen = |joiner: usize| -> Vec<bool> {
        events
            .iter()
            .filter(|(node, _)| *node == joiner)
            .filter_map(|(_, event)| match event {
                Event::NeighbourUp { peer, .. } if *peer == seed_id => Some(true),
                Event::NeighbourDown { peer } if *peer == seed_id => Some(false),
                _ => None,
            })
            .collect()
    };
    let refused: Vec<usize> = joiners.into_iter().filter(|&j| seen(j).starts_with(&[true, false])).collect();
    assert_eq!(refused.len(), 1, "exactly one joiner was refused: {:?}", joiners.map(seen));
    for joiner in joiners {
        assert_eq!(seen(joiner).last(), Some(&true), "node {joiner} ends linked to the seed");
    }
}
