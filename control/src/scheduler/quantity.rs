//! Resource quantities (`100m`, `1.5`, `2Gi`, `1e3`) read as whole numbers
//! for the scheduler's arithmetic: CPU in millicores, everything else in
//! units, both rounded up as upstream's `MilliValue`/`Value` do. The API
//! server already validated the strings; a malformed one reads as zero.

/// Nano-units of a quantity string, or None when it does not parse.
fn nanos(s: &str) -> Option<i128> {
    let s = s.trim();
    let (negative, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(num_end);
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    // mantissa × 10^exp10 × 2^exp2
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    let digits = if digits.len() > 30 { return None } else if digits.is_empty() { "0" } else { digits };
    let mantissa: i128 = digits.parse().ok()?;
    let mut exp10: i32 = -(frac_part.len() as i32);
    let mut exp2: u32 = 0;
    match suffix {
        "" => {}
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        "Ki" => exp2 = 10,
        "Mi" => exp2 = 20,
        "Gi" => exp2 = 30,
        "Ti" => exp2 = 40,
        "Pi" => exp2 = 50,
        "Ei" => exp2 = 60,
        s if s.len() > 1 && (s.starts_with('e') || s.starts_with('E')) => exp10 += s[1..].parse::<i32>().ok()?,
        _ => return None,
    }
    exp10 += 9; // to nano-units
    let mut v = mantissa.checked_mul(1i128.checked_shl(exp2)?)?;
    if exp10 >= 0 {
        v = v.checked_mul(10i128.checked_pow(exp10 as u32)?)?;
    } else {
        let d = 10i128.checked_pow(exp10.unsigned_abs()).unwrap_or(i128::MAX);
        v = v / d + i128::from(v % d != 0);
    }
    Some(if negative { -v } else { v })
}

fn div_ceil(a: i128, b: i128) -> i64 {
    let q = a / b + i128::from(a % b > 0);
    q.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Millicores (or milli-units) of a quantity, rounded up.
pub fn milli_value(s: &str) -> i64 {
    nanos(s).map(|n| div_ceil(n, 1_000_000)).unwrap_or(0)
}

/// Units of a quantity (bytes, pods, devices), rounded up.
pub fn value(s: &str) -> i64 {
    nanos(s).map(|n| div_ceil(n, 1_000_000_000)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        assert_eq!(milli_value("100m"), 100);
        assert_eq!(milli_value("0.1"), 100);
        assert_eq!(milli_value("1.5"), 1500);
        assert_eq!(milli_value("2"), 2000);
        assert_eq!(milli_value("1u"), 1);
        assert_eq!(value("1Gi"), 1 << 30);
        assert_eq!(value("128Mi"), 128 << 20);
        assert_eq!(value("1.5Gi"), 3 << 29);
        assert_eq!(value("1e3"), 1000);
        assert_eq!(value("2k"), 2000);
        assert_eq!(value("110"), 110);
        assert_eq!(value("500m"), 1);
        assert_eq!(value("junk"), 0);
        assert_eq!(value(""), 0);
    }
}
