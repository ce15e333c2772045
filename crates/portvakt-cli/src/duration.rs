//! Durations on the command line, one syntax for every flag: whole numbers with a unit, `ms`,
//! `s`, `m` or `h`, one or several (`500ms`, `30s`, `10m`, `1h30m`), or plain seconds (`45`).

use std::time::Duration;

/// Parses a duration; zero is allowed (e.g. `--shutdown-timeout 0s`: do not wait).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let bad = || {
        format!(
            "`{text}` is not a duration: write whole numbers with ms, s, m or h, like 30s, 500ms or 1h30m"
        )
    };
    if trimmed.is_empty() {
        return Err(bad());
    }
    if trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return trimmed.parse().map(Duration::from_secs).map_err(|_| bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let (millis_per_unit, unit_len) = if rest.starts_with("ms") {
            (1, 2)
        } else if rest.starts_with('s') {
            (1_000, 1)
        } else if rest.starts_with('m') {
            (60_000, 1)
        } else if rest.starts_with('h') {
            (3_600_000, 1)
        } else {
            return Err(bad());
        };
        rest = &rest[unit_len..];
        let part = number
            .checked_mul(millis_per_unit)
            .map(Duration::from_millis)
            .ok_or_else(bad)?;
        total = total.checked_add(part).ok_or_else(bad)?;
    }
    Ok(total)
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
        for bad in [
            "",
            "s",
            "ms",
            "1.5s",
            "-1s",
            "10 sec",
            "ten",
            "10x",
            "10m5",
            "1h 30m",
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
