use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Error;

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// A point in time: microseconds since 1970-01-01T00:00:00Z, negative before.
///
/// This is the host's own representation of event time and window bounds, so
/// nothing is lost crossing the boundary.
///
/// ```
/// use weir_guest_sdk::Timestamp;
/// let t = Timestamp::parse_rfc3339("2022-01-01T00:00:04.5+01:00").unwrap();
/// assert_eq!(t.to_rfc3339(), "2021-12-31T23:00:04.5Z");
/// assert_eq!(Timestamp::from_unix_seconds_f64(1.5).micros(), 1_500_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(i64);

/// Calendar parts of a [`Timestamp`] in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTimeParts {
    /// Year, e.g. 2022.
    pub year: i64,
    /// Month, 1 to 12.
    pub month: u32,
    /// Day of the month, 1 to 31.
    pub day: u32,
    /// Hour, 0 to 23.
    pub hour: u32,
    /// Minute, 0 to 59.
    pub minute: u32,
    /// Second, 0 to 59.
    pub second: u32,
    /// Microsecond, 0 to 999,999.
    pub micros: u32,
}

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// From microseconds since the epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Timestamp(micros)
    }

    /// From whole seconds since the epoch.
    pub const fn from_unix_seconds(seconds: i64) -> Self {
        Timestamp(seconds * MICROS_PER_SECOND)
    }

    /// From fractional seconds since the epoch (CSV exports often carry
    /// these), rounded to the nearest microsecond.
    pub fn from_unix_seconds_f64(seconds: f64) -> Self {
        Timestamp((seconds * MICROS_PER_SECOND as f64).round() as i64)
    }

    /// Microseconds since the epoch.
    pub const fn micros(self) -> i64 {
        self.0
    }

    /// Seconds since the epoch, with the fraction.
    pub fn unix_seconds_f64(self) -> f64 {
        self.0 as f64 / MICROS_PER_SECOND as f64
    }

    /// Splits into calendar parts (proleptic Gregorian, UTC).
    pub fn parts(self) -> DateTimeParts {
        let seconds = self.0.div_euclid(MICROS_PER_SECOND);
        let micros = self.0.rem_euclid(MICROS_PER_SECOND) as u32;
        let days = seconds.div_euclid(SECONDS_PER_DAY);
        let second_of_day = seconds.rem_euclid(SECONDS_PER_DAY) as u32;
        let (year, month, day) = civil_from_days(days);
        DateTimeParts { year, month, day, hour: second_of_day / 3600, minute: second_of_day / 60 % 60, second: second_of_day % 60, micros }
    }

    /// From calendar parts in UTC; `None` when a part is out of range.
    pub fn from_parts(p: DateTimeParts) -> Option<Self> {
        let days_in_month = match p.month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if is_leap(p.year) => 29,
            2 => 28,
            _ => return None,
        };
        if p.day == 0 || p.day > days_in_month || p.hour > 23 || p.minute > 59 || p.second > 59 {
            return None;
        }
        if p.micros >= 1_000_000 || p.year.abs() > 200_000 {
            return None;
        }
        let days = days_from_civil(p.year, p.month, p.day);
        let seconds = days * SECONDS_PER_DAY + i64::from(p.hour * 3600 + p.minute * 60 + p.second);
        Some(Timestamp(seconds * MICROS_PER_SECOND + i64::from(p.micros)))
    }

    /// Parses RFC 3339 / ISO 8601 text such as `2022-01-01T00:00:04Z`,
    /// `2022-01-01 00:00:04.25+02:00`. Text without an offset is read as UTC.
    pub fn parse_rfc3339(text: &str) -> Result<Self, Error> {
        parse(text.trim()).ok_or_else(|| Error::msg(format!("`{text}` is not an RFC 3339 time (expected like 2022-01-01T00:00:04Z)")))
    }

    /// Formats as RFC 3339 in UTC with a `Z`; the fraction appears only when
    /// it is not zero, without trailing zeros.
    pub fn to_rfc3339(self) -> String {
        self.to_string()
    }
}

// Writes `n` as `width` digits (n < 10^width).
fn put_digits(out: &mut [u8], mut n: u32) {
    for byte in out.iter_mut().rev() {
        *byte = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.parts();
        if (0..=9999).contains(&p.year) {
            // Digit by digit: a format plugin writes two of these per
            // window, and `write!` with padding costs several times more in
            // WebAssembly.
            let mut text = *b"0000-00-00T00:00:00.000000Z";
            put_digits(&mut text[0..4], p.year as u32);
            put_digits(&mut text[5..7], p.month);
            put_digits(&mut text[8..10], p.day);
            put_digits(&mut text[11..13], p.hour);
            put_digits(&mut text[14..16], p.minute);
            put_digits(&mut text[17..19], p.second);
            let len = if p.micros == 0 {
                19
            } else {
                put_digits(&mut text[20..26], p.micros);
                26 - text[20..26].iter().rev().take_while(|&&d| d == b'0').count()
            };
            text[len] = b'Z';
            return f.write_str(std::str::from_utf8(&text[..=len]).expect("ASCII digits"));
        }
        write!(f, "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", p.year, p.month, p.day, p.hour, p.minute, p.second)?;
        if p.micros != 0 {
            let fraction = format!("{:06}", p.micros);
            write!(f, ".{}", fraction.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

// Days since 1970-01-01 of a civil date (Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn parse(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let part = s.get(from..from + len)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let mut parts = DateTimeParts {
        year: i64::from(num(0, 4)?),
        month: num(5, 2)?,
        day: num(8, 2)?,
        hour: num(11, 2)?,
        minute: num(14, 2)?,
        second: num(17, 2)?,
        micros: 0,
    };
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() {
            return None;
        }
        let mut micros = 0u32;
        for (n, c) in digits.bytes().take(6).enumerate() {
            micros += u32::from(c - b'0') * 10u32.pow(5 - n as u32);
        }
        parts.micros = micros;
    }
    let offset_seconds: i64 = match &s[i..] {
        "" | "Z" | "z" => 0,
        rest if rest.len() == 6 && matches!(rest.as_bytes()[0], b'+' | b'-') && rest.as_bytes()[3] == b':' => {
            let hours = i64::from(num(i + 1, 2)?);
            let minutes = i64::from(num(i + 4, 2)?);
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (hours * 3600 + minutes * 60)
        }
        _ => return None,
    };
    let local = Timestamp::from_parts(parts)?;
    Some(Timestamp(local.0 - offset_seconds * MICROS_PER_SECOND))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        for text in ["1970-01-01T00:00:00Z", "2020-07-12T00:00:00Z", "1969-12-31T23:59:59.999999Z", "1900-02-28T12:00:00.5Z", "2024-02-29T23:59:59Z"] {
            let t = Timestamp::parse_rfc3339(text).unwrap();
            assert_eq!(t.to_rfc3339(), text);
        }
    }

    #[test]
    fn the_digits_match_the_padded_format() {
        let padded = |t: Timestamp| {
            let p = t.parts();
            let mut text = format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", p.year, p.month, p.day, p.hour, p.minute, p.second);
            if p.micros != 0 {
                text.push('.');
                text.push_str(format!("{:06}", p.micros).trim_end_matches('0'));
            }
            text + "Z"
        };
        // Years 0 to 9999 and beyond, whole seconds and every fraction length.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..20_000i64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let micros = (x % 400_000_000_000_000_000) as i64 - 62_200_000_000_000_000 + [0, 1, 10, 500_000, 120_000][i as usize % 5];
            let t = Timestamp(micros - micros.rem_euclid(1_000_000) * (i % 2));
            assert_eq!(t.to_rfc3339(), padded(t), "{micros}");
        }
        assert_eq!(Timestamp::from_parts(DateTimeParts { year: 10_000, month: 1, day: 1, hour: 0, minute: 0, second: 0, micros: 0 }).unwrap().to_rfc3339(), "10000-01-01T00:00:00Z");
    }

    #[test]
    fn before_the_epoch_is_negative() {
        let t = Timestamp::parse_rfc3339("1969-12-31T23:59:59Z").unwrap();
        assert_eq!(t.micros(), -1_000_000);
    }

    #[test]
    fn offsets_move_to_utc() {
        let t = Timestamp::parse_rfc3339("2022-01-01T02:00:00+02:00").unwrap();
        assert_eq!(t, Timestamp::parse_rfc3339("2022-01-01T00:00:00Z").unwrap());
    }

    #[test]
    fn rejects_what_is_not_a_time() {
        for bad in ["", "2022-13-01T00:00:00Z", "2022-02-30T00:00:00Z", "yesterday", "2022-01-01T00:00:00+2"] {
            assert!(Timestamp::parse_rfc3339(bad).is_err(), "{bad}");
        }
    }
}
