//! How the proxy's worker threads share out connections (`Workers`); the accept loops
//! themselves are tested over real sockets in `tests/serve.rs`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{Admission, Load, Workers};

fn loads(workers: &Workers) -> Vec<usize> {
    workers
        .load
        .iter()
        .map(|load| load.load(Ordering::Relaxed))
        .collect()
}

#[test]
fn a_connection_goes_to_the_started_worker_serving_the_fewest_and_stays_on_a_tie() {
    let workers = Workers::new(3);
    let (a, _a_inbox) = workers.join().unwrap();
    let (b, _b_inbox) = workers.join().unwrap();
    assert_eq!((a, b), (0, 1));
    assert_eq!(
        workers.assign(0),
        0,
        "a tie stays with the accepting worker"
    );
    assert_eq!(workers.assign(0), 1, "to the one serving fewer");
    assert_eq!(workers.assign(1), 1, "a tie, accepted by the other");
    assert_eq!(workers.assign(1), 0);
    // Worker 2's loop has not started: it serves none, and is given none.
    assert_eq!(loads(&workers), [2, 2, 0]);

    let (c, _c_inbox) = workers.join().unwrap();
    assert_eq!(c, 2);
    assert_eq!(
        workers.assign(0),
        2,
        "once started, it is the one serving fewest"
    );
    assert!(workers.join().is_none(), "every worker has joined");
}

#[test]
fn a_connection_s_count_moves_with_it_and_is_given_back_when_it_goes() {
    let admission = Admission::with_workers(8, 2);
    let workers = admission.workers.as_ref().unwrap();
    workers.join().unwrap();
    workers.join().unwrap();
    let mut load = Load {
        admission: Arc::clone(&admission),
        worker: workers.assign(0),
    };
    assert_eq!(loads(workers), [1, 0]);
    load.move_to(1);
    assert_eq!(loads(workers), [0, 1]);
    drop(load);
    assert_eq!(loads(workers), [0, 0]);
}
