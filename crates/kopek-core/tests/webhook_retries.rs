//! When failed webhook deliveries are tried again: the schedule, its jitter, the
//! receiver's Retry-After, and which answers count as delivered.

use kopek_core::webhook::retry::{
    retry_after_seconds, verdict, Next, Schedule, Verdict, DELAYS_DEFAULT, RETRY_AFTER_MAX_S,
};

const NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

#[test]
fn the_default_schedule_retries_for_about_three_days() {
    let total: i64 = DELAYS_DEFAULT.iter().sum();
    assert!((3 * 86_400..4 * 86_400).contains(&total), "{total} s");
    // Each wait at least as long as the one before: backing off, never hurrying.
    assert!(DELAYS_DEFAULT.windows(2).all(|w| w[0] <= w[1]));
    let schedule = Schedule::default();
    let attempts = (1..=20)
        .take_while(|&n| schedule.after_failure(n, NOW, 0, None) != Next::Dead)
        .count();
    assert_eq!(
        attempts,
        DELAYS_DEFAULT.len(),
        "one retry per delay, then dead"
    );
}

#[test]
fn jitter_stretches_a_wait_by_at_most_a_fifth() {
    let schedule = Schedule::parse("100s,1h").unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for jitter in 0..1_000u64 {
        let Next::RetryAt(at) = schedule.after_failure(1, NOW, jitter, None) else {
            panic!("dead after one attempt");
        };
        assert!((NOW + 100..=NOW + 120).contains(&at), "{at}");
        seen.insert(at);
        let Next::RetryAt(at) = schedule.after_failure(2, NOW, jitter * 7_919, None) else {
            panic!("dead after two attempts");
        };
        assert!((NOW + 3_600..=NOW + 4_320).contains(&at), "{at}");
    }
    assert_eq!(seen.len(), 21, "every second of the stretch is used");
    assert_eq!(schedule.after_failure(3, NOW, 0, None), Next::Dead);
    // Under five seconds there is nothing to stretch.
    let short = Schedule::parse("4").unwrap();
    assert_eq!(
        short.after_failure(1, NOW, u64::MAX, None),
        Next::RetryAt(NOW + 4)
    );
}

#[test]
fn retry_after_waits_longer_never_shorter_and_at_most_a_day() {
    let schedule = Schedule::parse("1m").unwrap();
    let at = |retry_after| schedule.after_failure(1, NOW, 0, Some(retry_after));
    assert_eq!(at(3_600), Next::RetryAt(NOW + 3_600));
    assert_eq!(at(5), Next::RetryAt(NOW + 60), "the schedule's wait stands");
    assert_eq!(at(-5), Next::RetryAt(NOW + 60));
    assert_eq!(at(30 * 86_400), Next::RetryAt(NOW + RETRY_AFTER_MAX_S));
}

#[test]
fn retry_after_is_read_in_both_of_its_forms() {
    // RFC 9110 §5.6.7's example date; 784111777 is its Unix time (`date -d` agrees).
    assert_eq!(
        retry_after_seconds("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_777 - 90),
        Some(90)
    );
    assert_eq!(
        retry_after_seconds("Thu, 01 Jan 2026 01:00:00 GMT", NOW),
        Some(3_600)
    );
    assert_eq!(
        retry_after_seconds("Thu, 01 Jan 2026 00:00:00 GMT", NOW + 10),
        Some(0)
    );
    assert_eq!(retry_after_seconds(" 120 ", NOW), Some(120));
    for junk in [
        "",
        "soon",
        "-5",
        "1.5",
        "Thu, 31 Feb 2026 00:00:00 GMT",
        "Thu, 01 Jan 2026 25:00:00 GMT",
        "Thu, 01 Jan 2026 00:00:00 UTC",
        "Thursday, 01-Jan-26 00:00:00 GMT",
    ] {
        assert_eq!(retry_after_seconds(junk, NOW), None, "{junk:?}");
    }
}

#[test]
fn answers_count_as_stripes_do() {
    for status in [200, 201, 202, 204, 299] {
        assert_eq!(verdict(status), Verdict::Delivered, "{status}");
    }
    assert_eq!(verdict(410), Verdict::Gone);
    for status in [
        100, 301, 302, 307, 308, 400, 401, 404, 409, 429, 500, 502, 503, 504,
    ] {
        assert_eq!(verdict(status), Verdict::Failed, "{status}");
    }
}

#[test]
fn schedules_are_read_as_an_operator_writes_them() {
    let parsed = Schedule::parse("30s, 5m,2h,1d,90").unwrap();
    assert_eq!(parsed.delays(), [30, 300, 7_200, 86_400, 90]);
    for bad in ["", "5x", "0s", "8d", "m", "1m,,2m", "-1m"] {
        assert!(Schedule::parse(bad).is_err(), "{bad:?}");
    }
    assert!(Schedule::parse(&vec!["1m"; 31].join(",")).is_err());
}
