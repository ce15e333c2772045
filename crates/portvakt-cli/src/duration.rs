//! Durations on the command line, one syntax for every flag: whole numbers with a unit, `ms`,
//! `s`, `m` or `h`, one or several (`500ms`, `30s`, `10m`, `1h30m`), or plain seconds (`45`).
//!
//! Parsed by [`humantime`], so everything it reads is accepted too: spaces between parts
//! (`1h 30m`, `10 sec`), fractions (`1.5s`), longer unit names (`sec`, `min`, `hours`) and
//! more units (`us`, `ns`, `d`, `w`; `M` is months, `m` minutes). Plain seconds are ours:
//! humantime wants a unit on every number but `0`, and `45` has always meant 45 seconds here.
//! Whatever either refuses gets one message that shows the syntax to use.

use std::time::Duration;

/// Parses a duration; zero is allowed (e.g. `--shutdown-timeout 0s`: do not wait).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let bad = || {
        format!(
            "`{text}` is not a duration: write whole numbers with ms, s, m or h, like 30s, 500ms or 1h30m"
        )
    };
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return trimmed.parse().map(Duration::from_secs).map_err(|_| bad());
    }
    humantime::parse_duration(trimmed).map_err(|_| bad())
}

/// [`parse_duration`], refusing zero: for timeouts and intervals, where zero would fail
/// every request or spin.
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        Duration::ZERO => Err(format!(
            "`{text}` is zero: give a positive duration, like 30s or 500ms"
        )),
        duration => Ok(duration),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_syntax_for_every_flag() {
        let ok = |text: &str| parse_duration(text).unwrap();
        assert_eq!(ok("10s"), Duration::from_secs(10));
        assert_eq!(ok("45"), Duration::from_secs(45));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("2m"), Duration::from_secs(120));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("1m500ms"), Duration::from_millis(60_500));
        assert_eq!(ok(" 0s "), Duration::ZERO);
        // humantime's forms, accepted as well.
        assert_eq!(ok("1h 30m"), Duration::from_secs(5400));
        assert_eq!(ok("10 sec"), Duration::from_secs(10));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("2min"), Duration::from_secs(120));
        assert_eq!(ok("1d"), Duration::from_secs(86_400));
        for bad in [
            "",
            "s",
            "ms",
            "-1s",
            "ten",
            "10x",
            "10m5",
            "1,5s",
            "1.s",
            "99999999999999999999h",
            "18446744073709551615h",
        ] {
            assert_eq!(
                parse_duration(bad),
                Err(format!(
                    "`{bad}` is not a duration: write whole numbers with ms, s, m or h, like 30s, 500ms or 1h30m"
                )),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_positive_duration("0ms"),
            Err("`0ms` is zero: give a positive duration, like 30s or 500ms".to_owned())
        );
        assert_eq!(
            parse_positive_duration("0"),
            Err("`0` is zero: give a positive duration, like 30s or 500ms".to_owned())
        );
        assert_eq!(parse_positive_duration("15m"), Ok(Duration::from_secs(900)));
    }
}
