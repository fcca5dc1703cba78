//! Durations written in attributes: `"30s"`, `"1m"`, `"1h30m"`, `"500ms"`, `"7d"`.

/// Parses a duration into milliseconds. A duration is one or more
/// `<number><unit>` parts, units `ms`, `s`, `m`, `h`, `d`; numbers may have
/// a fraction (`"1.5s"`).
pub(crate) fn parse_millis(text: &str) -> Result<u64, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err(expected(text));
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(expected(text));
        }
        let number: f64 = rest[..num_len].parse().map_err(|_| expected(text))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 1.0,
            "s" => 1_000.0,
            "m" => 60_000.0,
            "h" => 3_600_000.0,
            "d" => 86_400_000.0,
            _ => return Err(expected(text)),
        };
        rest = &rest[unit_len..];
        total += number * factor;
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return Err(format!("duration `{text}` is too long"));
    }
    Ok(total.round() as u64)
}

fn expected(text: &str) -> String {
    format!(
        "invalid duration `{text}`; expected a number and a unit, like \"500ms\", \"30s\", \"1m\", \"1h30m\" or \"7d\""
    )
}

#[cfg(test)]
mod tests {
    use super::parse_millis;

    #[test]
    fn parses_units_and_sums() {
        assert_eq!(parse_millis("500ms"), Ok(500));
        assert_eq!(parse_millis("30s"), Ok(30_000));
        assert_eq!(parse_millis("1m"), Ok(60_000));
        assert_eq!(parse_millis("1h30m"), Ok(5_400_000));
        assert_eq!(parse_millis("7d"), Ok(604_800_000));
        assert_eq!(parse_millis("1.5s"), Ok(1_500));
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for bad in ["", "10", "1 minute", "5x", "m", "1..2s", "-1s"] {
            assert!(parse_millis(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
