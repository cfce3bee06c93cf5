//! UTC calendar arithmetic on Unix milliseconds, for budget periods and
//! spend groups. Every boundary is UTC midnight (days), Monday 00:00 UTC
//! (weeks) or the 1st at 00:00 UTC (months): the same instant for every
//! process on every machine, whatever its time zone.

use std::time::{SystemTime, UNIX_EPOCH};

const DAY_MS: i64 = 86_400_000;

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
/// Howard Hinnant's `days_from_civil`.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// 00:00 UTC of the day containing `ms`.
pub fn day_start(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS) * DAY_MS
}

/// 00:00 UTC on the 1st of the month containing `ms`.
pub fn month_start(ms: i64) -> i64 {
    let (y, m, _) = civil_from_days(ms.div_euclid(DAY_MS));
    days_from_civil(y, m, 1) * DAY_MS
}

/// `YYYY-MM-DD` (UTC) → 00:00 UTC of that day.
pub fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    // Reject 2026-02-30 and the like: the date must round-trip.
    (civil_from_days(days) == (y, m, d)).then_some(days * DAY_MS)
}

/// `YYYY-MM-DD` of `ms` (UTC).
pub fn format_date(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(DAY_MS));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (ISO 8601, UTC) of `ms`.
pub fn format_iso(ms: i64) -> String {
    let in_day = ms.rem_euclid(DAY_MS);
    let secs = in_day / 1000;
    format!(
        "{}T{:02}:{:02}:{:02}.{:03}Z",
        format_date(ms),
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60,
        in_day % 1000
    )
}

/// An RFC 3339 / ISO 8601 timestamp (`2024-05-01T12:00:00.123456Z`,
/// `…+02:00`, a space for the `T`, fractions of any length, or a date
/// alone) as Unix milliseconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let t = text.trim();
    let date = parse_date(t.get(..10)?)?;
    let rest = &t[10..];
    if rest.is_empty() {
        return Some(date);
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let num = |s: &str| -> Option<i64> {
        (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
    };
    let (h, m, sec) = (
        num(rest.get(0..2)?)?,
        num(rest.get(3..5)?)?,
        num(rest.get(6..8)?)?,
    );
    if rest.get(2..3) != Some(":") || rest.get(5..6) != Some(":") || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let mut tail = &rest[8..];
    let mut ms = 0;
    if let Some(frac) = tail.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let first3 = format!("{:0<3}", &frac[..digits.min(3)]);
        ms = first3.parse::<i64>().ok()?;
        tail = &frac[digits..];
    }
    let offset_min = match tail {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match tail.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let oh = num(tail.get(1..3)?)?;
            let om = num(tail.get(tail.len() - 2..)?)?;
            sign * (oh * 60 + om)
        }
    };
    Some(date + ((h * 60 + m - offset_min) * 60 + sec) * 1000 + ms)
}

/// `YYYY-MM-DD HH:MM UTC` of `ms`.
pub fn format_datetime(ms: i64) -> String {
    let secs = ms.rem_euclid(DAY_MS) / 1000;
    format!(
        "{} {:02}:{:02} UTC",
        format_date(ms),
        secs / 3600,
        (secs % 3600) / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        for d in (-800_000..800_000).step_by(997) {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }

    #[test]
    fn periods_start_at_utc_boundaries() {
        // 2026-03-31 23:59:59.999 UTC
        let t = parse_date("2026-03-31").unwrap() + DAY_MS - 1;
        assert_eq!(format_datetime(t), "2026-03-31 23:59 UTC");
        assert_eq!(day_start(t), parse_date("2026-03-31").unwrap());
        assert_eq!(month_start(t), parse_date("2026-03-01").unwrap());
        // One millisecond later it is April.
        assert_eq!(month_start(t + 1), parse_date("2026-04-01").unwrap());
        assert_eq!(day_start(t + 1), t + 1);
    }

    #[test]
    fn rfc3339_timestamps_are_read_with_fractions_and_offsets() {
        let base = parse_date("2024-05-01").unwrap();
        let at = |h: i64, m: i64, s: i64, ms: i64| base + ((h * 60 + m) * 60 + s) * 1000 + ms;
        assert_eq!(parse_rfc3339("2024-05-01T12:00:00Z"), Some(at(12, 0, 0, 0)));
        assert_eq!(
            parse_rfc3339("2024-05-01T12:00:00.123456Z"),
            Some(at(12, 0, 0, 123))
        );
        assert_eq!(
            parse_rfc3339("2024-05-01T14:30:05.5+02:00"),
            Some(at(12, 30, 5, 500))
        );
        assert_eq!(
            parse_rfc3339("2024-05-01 12:00:00.000000+00:00"),
            Some(at(12, 0, 0, 0))
        );
        assert_eq!(parse_rfc3339("2024-05-01"), Some(base));
        assert_eq!(parse_rfc3339("2024-05-01T25:00:00Z"), None);
        assert_eq!(parse_rfc3339("yesterday at noon"), None);
        assert_eq!(parse_rfc3339("2024-05-01T12:00:00.Z"), None);
    }

    #[test]
    fn dates_are_validated() {
        assert!(parse_date("2026-02-30").is_none());
        assert!(parse_date("2026-13-01").is_none());
        assert!(parse_date("yesterday").is_none());
        assert_eq!(
            parse_date("2024-02-29").map(format_date).as_deref(),
            Some("2024-02-29")
        );
    }
}
