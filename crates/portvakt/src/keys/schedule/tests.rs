use std::time::{Duration, Instant};

use super::RefreshSchedule;

const HOUR: Duration = Duration::from_secs(3600);

fn schedule(refresh_interval: Duration) -> RefreshSchedule {
    RefreshSchedule {
        refresh_interval,
        unknown_kid_interval: Duration::from_secs(10),
        max_key_age: Duration::from_secs(24 * 3600),
        http_timeout: Duration::from_secs(5),
    }
}

/// Random numbers that hit the bottom, the middle and the top of every range.
const RANDOMS: [u64; 5] = [0, 1, 4_999, u64::MAX / 2, u64::MAX];

#[test]
fn backoff_grows_and_is_capped() {
    let schedule = schedule(HOUR);
    for failures in 1..20 {
        let ceiling =
            Duration::from_secs(1u64 << (failures - 1).min(6)).min(Duration::from_secs(60));
        for random in RANDOMS {
            let d = schedule.after_failure(failures, random);
            assert!(d >= ceiling / 2 && d <= ceiling, "{failures}: {d:?}");
        }
    }
    assert_eq!(schedule.after_failure(1, 0), Duration::from_millis(500));
    assert_eq!(schedule.after_failure(1, 500), Duration::from_secs(1));
    assert_eq!(schedule.after_failure(30, 0), Duration::from_secs(30));
    let short = self::schedule(Duration::from_secs(2));
    for random in RANDOMS {
        assert!(short.after_failure(30, random) <= Duration::from_secs(2));
    }
}

#[test]
fn success_waits_the_jittered_interval_within_half_the_key_age() {
    let schedule = schedule(Duration::from_secs(100));
    for random in RANDOMS {
        let d = schedule.after_success(random);
        assert!(
            d >= Duration::from_secs(90) && d <= Duration::from_secs(110),
            "{d:?}"
        );
    }
    assert_eq!(schedule.after_success(0), Duration::from_secs(90));
    assert_eq!(schedule.after_success(20_000), Duration::from_secs(110));
    let short_lived = RefreshSchedule {
        max_key_age: Duration::from_secs(60),
        ..schedule
    };
    assert_eq!(short_lived.after_success(u64::MAX), Duration::from_secs(30));
}

#[test]
fn misconfiguration_is_rechecked_within_five_minutes() {
    for random in RANDOMS {
        let d = schedule(HOUR).after_misconfiguration(random);
        assert!(
            d >= Duration::from_secs(270) && d <= Duration::from_secs(330),
            "{d:?}"
        );
        let d = schedule(Duration::from_secs(60)).after_misconfiguration(random);
        assert!(
            d >= Duration::from_secs(54) && d <= Duration::from_secs(66),
            "{d:?}"
        );
    }
}

#[test]
fn jitter_of_a_tiny_delay_is_none() {
    let schedule = schedule(Duration::from_millis(5));
    assert_eq!(schedule.after_success(12345), Duration::from_millis(5));
}

#[test]
fn unknown_kid_refreshes_are_rate_limited() {
    let schedule = schedule(HOUR);
    let start = Instant::now();
    assert!(schedule.unknown_kid_refresh_allowed(None, start));
    assert!(!schedule.unknown_kid_refresh_allowed(Some(start), start));
    assert!(!schedule.unknown_kid_refresh_allowed(Some(start), start + Duration::from_secs(9)));
    assert!(schedule.unknown_kid_refresh_allowed(Some(start), start + Duration::from_secs(10)));
}

#[test]
fn waits_cover_two_fetches_and_keys_age_out() {
    let schedule = schedule(HOUR);
    assert_eq!(schedule.wait_limit(), Duration::from_millis(10_500));
    assert_eq!(schedule.forced_wait_limit(), Duration::from_millis(21_000));
    assert!(!schedule.is_aged_out(Duration::from_secs(24 * 3600)));
    assert!(schedule.is_aged_out(Duration::from_secs(24 * 3600 + 1)));
    let start = Instant::now();
    assert_eq!(
        schedule.key_deadline(start),
        Some(start + Duration::from_secs(24 * 3600))
    );
    let forever = RefreshSchedule {
        max_key_age: Duration::MAX,
        ..schedule
    };
    assert_eq!(forever.key_deadline(start), None);
}

#[test]
fn intervals_beyond_the_clock_saturate() {
    let never = RefreshSchedule {
        refresh_interval: Duration::MAX,
        max_key_age: Duration::MAX,
        http_timeout: Duration::MAX,
        ..schedule(HOUR)
    };
    for random in [0, 1, u64::MAX / 2, u64::MAX] {
        // At least the interval less its jitter, and no panic.
        assert!(never.after_success(random) >= Duration::MAX / 2, "{random}");
    }
    assert_eq!(never.wait_limit(), Duration::MAX);
    assert_eq!(never.forced_wait_limit(), Duration::MAX);
}
