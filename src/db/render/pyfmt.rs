//! Python's own spellings, for the values the SDK would have turned into Python objects:
//! `repr(float)` as `json.dumps` writes it, `int(Decimal)`, `isoformat()` of dates, times and
//! aware datetimes, `base64` of bytes. Each returns `None` where Python would raise or where
//! this code is not sure to agree, and the renderer then leaves the rows to Python.

/// `json.dumps(float(text))`: the shortest digits that round-trip, fixed notation for decimal
/// exponents from -4 to 16 and scientific outside, `NaN`/`Infinity` bare.
pub fn float(text: &str) -> Option<String> {
    let value: f64 = text.parse().ok()?;
    Some(float_value(value))
}

/// `json.dumps(value)` for a float.
pub fn float_value(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits, as Python's repr does.
    let scientific = format!("{:e}", value.abs());
    let (mantissa, exponent) = scientific.split_once('e').expect("{:e} has an exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let exponent: i32 = exponent.parse().expect("{:e}'s exponent is a number");
    let decpt = exponent + 1;
    let sign = if value.is_sign_negative() { "-" } else { "" };
    let n = digits.len() as i32;
    let body = if decpt <= -4 || decpt > 16 {
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let e = decpt - 1;
        format!(
            "{first}{fraction}e{}{:02}",
            if e < 0 { '-' } else { '+' },
            e.abs()
        )
    } else if decpt <= 0 {
        format!("0.{}{digits}", "0".repeat((-decpt) as usize))
    } else if decpt >= n {
        format!("{digits}{}.0", "0".repeat((decpt - n) as usize))
    } else {
        let (whole, fraction) = digits.split_at(decpt as usize);
        format!("{whole}.{fraction}")
    };
    format!("{sign}{body}")
}

/// A numeric's text (`-12.50`, `100.00`) as the SDK writes a Decimal: an int when integral,
/// else a float.
pub fn numeric(text: &str) -> Option<String> {
    let (sign, unsigned) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits_ok(whole) || !digits_ok(fraction) {
        return None;
    }
    if fraction.bytes().all(|b| b == b'0') {
        let whole = whole.trim_start_matches('0');
        return Some(if whole.is_empty() {
            "0".into()
        } else {
            format!("{sign}{whole}")
        });
    }
    float(text)
}

/// A JSON integer as Python's `int` writes it back (`-0` is `0`).
pub fn int(text: &str) -> String {
    if text == "-0" {
        "0".into()
    } else {
        text.into()
    }
}

/// `base64.b64encode(bytes.fromhex(...))` of PostgreSQL's `\x0a0b` bytea text.
pub fn bytea(text: &str) -> Option<String> {
    use base64::Engine as _;
    let bytes = hex::decode(text.strip_prefix("\\x")?).ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// A wall-clock time `HH:MM:SS[.f]`, as `time.isoformat()` writes it: microseconds as six
/// digits when not zero. Returns (hours, minutes, seconds, microseconds).
fn clock(text: &str) -> Option<(u32, u32, u32, u32)> {
    let (hms, fraction) = text.split_once('.').unwrap_or((text, ""));
    let mut parts = hms.split(':');
    let mut field = |max: u32| -> Option<u32> {
        let part = parts.next()?;
        (part.len() == 2).then_some(())?;
        part.parse().ok().filter(|v| *v <= max)
    };
    let (h, m, s) = (field(23)?, field(59)?, field(59)?);
    if parts.next().is_some() || fraction.len() > 6 || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let micros = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<6}").parse().ok()?
    };
    Some((h, m, s, micros))
}

fn clock_text(h: u32, m: u32, s: u32, micros: u32) -> String {
    if micros == 0 {
        format!("{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}.{micros:06}")
    }
}

/// `time.fromisoformat(text).isoformat()`.
pub fn time(text: &str) -> Option<String> {
    let (h, m, s, micros) = clock(text)?;
    Some(clock_text(h, m, s, micros))
}

/// `(year, month, day)` of `YYYY-MM-DD`, years 1 to 9999 as Python has them.
fn date_parts(text: &str) -> Option<(i64, u32, u32)> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year: i64 = text[..4].parse().ok().filter(|y| (1..=9999).contains(y))?;
    let month: u32 = text[5..7].parse().ok().filter(|m| (1..=12).contains(m))?;
    let day: u32 = text[8..]
        .parse()
        .ok()
        .filter(|d| (1..=days_in_month(year, month)).contains(d))?;
    Some((year, month, day))
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// `date.fromisoformat(text).isoformat()`: the same text, when Python can read it.
pub fn date(text: &str) -> Option<String> {
    date_parts(text).map(|_| text.to_string())
}

/// `datetime.fromisoformat(text).isoformat()` of a timestamp without a zone.
pub fn timestamp(text: &str) -> Option<String> {
    let (day, clock_part) = text.split_once('T')?;
    date_parts(day)?;
    let (h, m, s, micros) = clock(clock_part)?;
    Some(format!("{day}T{}", clock_text(h, m, s, micros)))
}

/// `datetime.fromisoformat(text).astimezone(zone).isoformat()` of a timestamp with an offset
/// (`...+05:30`), for a zone `offset_seconds` east of UTC.
pub fn timestamptz(text: &str, offset_seconds: i64) -> Option<String> {
    let split = text.rfind(['+', '-']).filter(|at| *at > 10)?;
    let (local, offset) = text.split_at(split);
    let (day, clock_part) = local.split_once('T')?;
    let (year, month, dom) = date_parts(day)?;
    let (h, m, s, micros) = clock(clock_part)?;
    let from = offset_text_seconds(offset)?;
    let seconds = days_from_civil(year, month, dom) * 86_400 + i64::from(h * 3600 + m * 60 + s)
        - from
        + offset_seconds;
    let (days, secs) = (
        seconds.div_euclid(86_400),
        seconds.rem_euclid(86_400) as u32,
    );
    let (year, month, dom) = civil_from_days(days);
    if !(1..=9999).contains(&year) {
        return None;
    }
    let clock_out = clock_text(secs / 3600, secs / 60 % 60, secs % 60, micros);
    Some(format!(
        "{year:04}-{month:02}-{dom:02}T{clock_out}{}",
        offset_text(offset_seconds)
    ))
}

fn offset_text_seconds(text: &str) -> Option<i64> {
    let sign = if text.starts_with('-') { -1 } else { 1 };
    let mut parts = text[1..].split(':');
    let mut next = || -> Option<i64> {
        match parts.next() {
            Some(p) if p.len() == 2 => p.parse().ok(),
            Some(_) => None,
            None => Some(0),
        }
    };
    let (h, m, s) = (next()?, next()?, next()?);
    Some(sign * (h * 3600 + m * 60 + s))
}

/// How `isoformat()` writes a UTC offset: `+HH:MM`, with `:SS` only when not zero.
fn offset_text(seconds: i64) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let a = seconds.abs();
    let (h, m, s) = (a / 3600, a / 60 % 60, a % 60);
    if s == 0 {
        format!("{sign}{h:02}:{m:02}")
    } else {
        format!("{sign}{h:02}:{m:02}:{s:02}")
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_written_as_python_writes_them() {
        for (text, python) in [
            ("0.1", "0.1"),
            ("3", "3.0"),
            ("-0", "-0.0"),
            ("1e16", "1e+16"),
            ("1e15", "1000000000000000.0"),
            ("0.0001", "0.0001"),
            ("0.00001", "1e-05"),
            ("123456789012345678", "1.2345678901234568e+17"),
            ("1.5e-7", "1.5e-07"),
            ("0.14285714285714285", "0.14285714285714285"),
            ("1e400", "Infinity"),
            ("2.5e+100", "2.5e+100"),
            ("-12.5", "-12.5"),
            ("9999999999999998", "9999999999999998.0"),
        ] {
            assert_eq!(float(text).unwrap(), python, "{text}");
        }
    }

    #[test]
    fn numerics_become_ints_when_integral() {
        for (text, python) in [
            ("100.00", "100"),
            ("-0.00", "0"),
            ("12.50", "12.5"),
            ("-7", "-7"),
            ("0.10", "0.1"),
        ] {
            assert_eq!(numeric(text).unwrap(), python, "{text}");
        }
        assert!(numeric("NaN").is_none());
    }

    #[test]
    fn dates_and_times_are_python_isoformat() {
        assert_eq!(time("10:00:00.5").unwrap(), "10:00:00.500000");
        assert_eq!(time("10:00:00").unwrap(), "10:00:00");
        assert!(time("24:00:00").is_none());
        assert_eq!(
            timestamp("2026-12-01T10:00:00.123").unwrap(),
            "2026-12-01T10:00:00.123000"
        );
        assert!(timestamp("infinity").is_none());
        assert!(date("2026-02-30").is_none());
        assert_eq!(
            timestamptz("2026-12-01T00:30:00.25+01:00", 0).unwrap(),
            "2026-11-30T23:30:00.250000+00:00"
        );
        assert_eq!(
            timestamptz("2024-02-28T23:00:00+00:00", 7200).unwrap(),
            "2024-02-29T01:00:00+02:00"
        );
        assert_eq!(
            timestamptz("2026-01-01T00:00:00-00:53:28", -3600).unwrap(),
            "2025-12-31T23:53:28-01:00"
        );
        assert_eq!(bytea("\\x00ff10").unwrap(), "AP8Q");
    }
}
