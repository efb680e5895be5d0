//! Timestamps: RFC 3339 (UTC) formatting and parsing without a date crate.

/// Days since 1970-01-01 to a (year, month, day) civil date (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A civil date to days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats nanoseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
pub fn format_ns(ns: u64) -> String {
    let secs = (ns / 1_000_000_000) as i64;
    let nanos = ns % 1_000_000_000;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z", s / 3600, s / 60 % 60, s % 60)
}

/// Parses a time given on the command line into nanoseconds since the Unix epoch.
///
/// Accepts Unix seconds (`1700000000`), a date (`2026-11-22`, midnight UTC) or an RFC 3339 UTC
/// time (`2026-11-22T02:36:37Z`, optionally with a fraction of a second).
pub fn parse_time(s: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "cannot parse time {s:?}: use Unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS[.frac]Z"
        )
    };
    if let Ok(secs) = s.parse::<u64>() {
        return secs.checked_mul(1_000_000_000).ok_or_else(bad);
    }
    let (date, rest) = s.split_once(['T', ' ']).unwrap_or((s, ""));
    let mut parts = date.splitn(3, '-');
    let mut num = |lo: i64, hi: i64| -> Result<i64, String> {
        let v: i64 = parts.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
        if (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            Err(bad())
        }
    };
    let (y, mo, d) = (num(1970, 9999)?, num(1, 12)? as u32, num(1, 31)? as u32);
    let mut ns = u64::try_from(days_from_civil(y, mo, d))
        .ok()
        .and_then(|days| days.checked_mul(86_400 * 1_000_000_000))
        .ok_or_else(|| format!("time {s:?} is out of range"))?;
    if !rest.is_empty() {
        let rest =
            rest.strip_suffix('Z').or_else(|| rest.strip_suffix("+00:00")).ok_or_else(bad)?;
        let (hms, frac) = rest.split_once('.').unwrap_or((rest, ""));
        let f: Vec<u64> =
            hms.split(':').map(|p| p.parse().map_err(|_| bad())).collect::<Result<_, _>>()?;
        let [h, mi, sec] = f[..] else { return Err(bad()) };
        if h > 23 || mi > 59 || sec > 60 {
            return Err(bad());
        }
        ns = ns.checked_add((h * 3600 + mi * 60 + sec) * 1_000_000_000).ok_or_else(bad)?;
        if !frac.is_empty() {
            if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let frac_ns = format!("{frac:0<9}").parse::<u64>().map_err(|_| bad())?;
            ns = ns.checked_add(frac_ns).ok_or_else(bad)?;
        }
    }
    Ok(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        assert_eq!(format_ns(0), "1970-01-01T00:00:00.000000000Z");
        let t = 1_795_314_997_123_000_000;
        assert_eq!(format_ns(t), "2026-11-22T02:36:37.123000000Z");
        assert_eq!(parse_time("2026-11-22T02:36:37.123Z"), Ok(t));
        assert_eq!(parse_time("1795314997"), Ok(1_795_314_997_000_000_000));
        assert_eq!(parse_time("2026-11-22"), Ok(1_795_305_600_000_000_000));
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2026-13-01").is_err());
        assert!(parse_time("9999-12-31T23:59:59.999999999Z").is_err());
        assert!(parse_time("99999999999999999999").is_err());
    }
}
