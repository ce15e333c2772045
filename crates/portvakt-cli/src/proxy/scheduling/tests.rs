use super::*;

#[test]
fn names_parse_back_to_their_policy() {
    for name in Scheduling::NAMES {
        assert_eq!(Scheduling::parse(name).unwrap().name(), name);
    }
    assert_eq!(Scheduling::default(), Scheduling::Batch);
}

#[test]
fn an_unknown_policy_is_refused_with_the_ones_there_are() {
    let error = Scheduling::parse("fifo").unwrap_err();
    assert!(error.contains("\"fifo\""), "{error}");
    assert!(
        error.contains("\"batch\"") && error.contains("\"normal\""),
        "{error}"
    );
}

// A thread of its own, so that the test runner's thread keeps its policy.
#[cfg(target_os = "linux")]
#[test]
fn batch_puts_the_calling_thread_and_only_it_under_sched_batch() {
    let before = Scheduling::of_current_thread();
    let (in_thread, normal_in_thread) = std::thread::spawn(|| {
        let normal = std::thread::spawn(|| {
            Scheduling::Normal.apply_to_current_thread().unwrap();
            Scheduling::of_current_thread()
        })
        .join()
        .unwrap();
        Scheduling::Batch.apply_to_current_thread().unwrap();
        (Scheduling::of_current_thread(), normal)
    })
    .join()
    .unwrap();
    assert_eq!(in_thread, Some(Scheduling::Batch));
    assert_eq!(normal_in_thread, Some(Scheduling::Normal));
    assert_eq!(Scheduling::of_current_thread(), before);
}
