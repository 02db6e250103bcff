//! Resource quantities (`100m`, `1Gi`, `2`, `1e3`, `0.5`) parsed and printed
//! the way upstream's `resource.Quantity` does.
//!
//! A [`Quantity`] is an exact decimal held as a count of nano-units
//! (`i128`), which covers everything from `1n` to well past `1000Ei`.
//! Precision finer than `1n` is rounded away from zero, as upstream does.
//! Comparison is by value (`1000m == 1`); [`Quantity::to_string`] gives the
//! canonical form the API server stores and prints (`0.5` → `500m`,
//! `1024Mi` → `1Gi`).

use serde_json::Value;
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

const NANOS_PER_UNIT: i128 = 1_000_000_000;

/// Why a quantity string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
    Format,
    #[error("unable to parse quantity's suffix")]
    Suffix,
    #[error("quantity is too large")]
    TooLarge,
}

/// Which family of suffix a quantity was written with; it decides the
/// canonical printed form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuantityFormat {
    /// `Ki`, `Mi`, ... (powers of 1024).
    BinarySI,
    /// `n`, `u`, `m`, none, `k`, `M`, ... (powers of 1000).
    DecimalSI,
    /// `e3`, `E-2`.
    DecimalExponent,
}

/// An exact resource amount.
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    nanos: i128,
    format: QuantityFormat,
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}
impl Eq for Quantity {}
impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

/// Parses a quantity string like upstream's `resource.ParseQuantity`.
pub fn parse_quantity(s: &str) -> Result<Quantity, QuantityError> {
    Quantity::parse(s)
}

impl FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

impl Default for Quantity {
    fn default() -> Self {
        Quantity::zero()
    }
}

impl Quantity {
    /// `0` (DecimalSI).
    pub fn zero() -> Quantity {
        Quantity { nanos: 0, format: QuantityFormat::DecimalSI }
    }

    /// An exact amount of nano-units.
    pub fn from_nanos(nanos: i128, format: QuantityFormat) -> Quantity {
        Quantity { nanos, format }
    }

    /// An amount of milli-units (`from_millis(250)` is `250m`).
    pub fn from_millis(millis: i64) -> Quantity {
        Quantity { nanos: i128::from(millis) * 1_000_000, format: QuantityFormat::DecimalSI }
    }

    /// A whole number of units in the given format (`from_units(1024, BinarySI)` is `1Ki`).
    pub fn from_units(units: i64, format: QuantityFormat) -> Quantity {
        Quantity { nanos: i128::from(units) * NANOS_PER_UNIT, format }
    }

    /// A quantity as it appears in JSON: a string, or a bare number (which
    /// upstream also accepts).
    pub fn from_json(v: &Value) -> Result<Quantity, QuantityError> {
        match v {
            Value::String(s) => Quantity::parse(s.trim()),
            Value::Number(n) => Quantity::parse(&n.to_string()),
            _ => Err(QuantityError::Format),
        }
    }

    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    pub fn format(&self) -> QuantityFormat {
        self.format
    }

    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    /// The value in milli-units, rounded up (upstream `MilliValue`).
    pub fn milli_value(&self) -> i128 {
        div_ceil(self.nanos, 1_000_000)
    }

    /// The value in units, rounded up (upstream `Value`).
    pub fn value(&self) -> i128 {
        div_ceil(self.nanos, NANOS_PER_UNIT)
    }

    pub fn checked_add(&self, other: &Quantity) -> Option<Quantity> {
        Some(Quantity { nanos: self.nanos.checked_add(other.nanos)?, format: self.format })
    }

    pub fn checked_sub(&self, other: &Quantity) -> Option<Quantity> {
        Some(Quantity { nanos: self.nanos.checked_sub(other.nanos)?, format: self.format })
    }

    /// Parses a quantity string like upstream's `resource.ParseQuantity`.
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        if s.is_empty() {
            return Err(QuantityError::Format);
        }
        let parts = split_quantity(s)?;
        let (base, exponent, format) = interpret_suffix(parts.suffix).ok_or(QuantityError::Suffix)?;
        let magnitude = scale_to_nanos(parts.int_digits, parts.frac_digits, base, exponent)?;
        let nanos = if parts.positive { magnitude } else { -magnitude };
        Ok(Quantity { nanos, format })
    }
}

/// `ceil(a / b)` for positive `b`.
fn div_ceil(a: i128, b: i128) -> i128 {
    let q = a / b;
    if a % b > 0 {
        q + 1
    } else {
        q
    }
}

struct QuantityParts<'a> {
    positive: bool,
    int_digits: &'a str,
    frac_digits: &'a str,
    suffix: &'a str,
}

/// Splits `[+-]digits[.digits]suffix` the way upstream's scanner does
/// (leading zeros dropped, a lone sign or suffix reading as zero).
fn split_quantity(s: &str) -> Result<QuantityParts<'_>, QuantityError> {
    let b = s.as_bytes();
    let end = b.len();
    let mut pos = 0;
    let mut positive = true;
    match b.first() {
        Some(b'-') => {
            positive = false;
            pos += 1;
        }
        Some(b'+') => pos += 1,
        _ => {}
    }
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    let int_start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let int_digits = &s[int_start..pos];
    let mut frac_digits = "";
    if pos < end && b[pos] == b'.' {
        pos += 1;
        let frac_start = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        frac_digits = &s[frac_start..pos];
    }
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return Err(QuantityError::Format);
    }
    Ok(QuantityParts { positive, int_digits, frac_digits, suffix: &s[suffix_start..] })
}

/// `(base, exponent, format)` of a suffix.
fn interpret_suffix(suffix: &str) -> Option<(u32, i32, QuantityFormat)> {
    use QuantityFormat::*;
    let decimal = |e| Some((10, e, DecimalSI));
    let binary = |e| Some((2, e, BinarySI));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        s if s.len() > 1 && (s.starts_with('e') || s.starts_with('E')) => {
            let e: i32 = s[1..].parse().ok()?;
            Some((10, e, DecimalExponent))
        }
        _ => None,
    }
}

/// `int.frac × base^exponent` in nano-units, rounded away from zero.
fn scale_to_nanos(int_digits: &str, frac_digits: &str, base: u32, exponent: i32) -> Result<i128, QuantityError> {
    let mut digits: String = format!("{int_digits}{frac_digits}");
    let mut exp10: i64 = -(frac_digits.len() as i64);
    let trimmed = digits.trim_start_matches('0').len();
    digits = digits[digits.len() - trimmed..].to_string();
    while digits.ends_with('0') {
        digits.pop();
        exp10 += 1;
    }
    if digits.is_empty() {
        return Ok(0);
    }
    // Keep 36 significant digits; anything dropped is non-zero and only
    // matters for rounding up.
    let mut inexact = false;
    if digits.len() > 36 {
        exp10 += (digits.len() - 36) as i64;
        digits.truncate(36);
        inexact = true;
    }
    let mut mantissa: i128 = digits.parse().map_err(|_| QuantityError::Format)?;
    if base == 2 {
        let factor = 2i128.checked_pow(exponent.max(0) as u32).ok_or(QuantityError::TooLarge)?;
        mantissa = mantissa.checked_mul(factor).ok_or(QuantityError::TooLarge)?;
    } else {
        exp10 += i64::from(exponent);
    }
    let shift = exp10 + 9;
    if shift >= 0 {
        let factor = 10i128.checked_pow(u32::try_from(shift).map_err(|_| QuantityError::TooLarge)?).ok_or(QuantityError::TooLarge)?;
        mantissa.checked_mul(factor).ok_or(QuantityError::TooLarge)
    } else if -shift > 38 {
        Ok(1)
    } else {
        let divisor = 10i128.pow((-shift) as u32);
        let q = mantissa / divisor;
        Ok(if mantissa % divisor != 0 || inexact { q + 1 } else { q })
    }
}

impl fmt::Display for Quantity {
    /// The canonical form upstream stores and prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0");
        }
        let mut format = self.format;
        if format == QuantityFormat::BinarySI
            && (self.nanos.abs() < 1024 * NANOS_PER_UNIT || self.nanos % NANOS_PER_UNIT != 0)
        {
            format = QuantityFormat::DecimalSI;
        }
        let sign = if self.nanos < 0 { "-" } else { "" };
        let magnitude = self.nanos.abs();
        match format {
            QuantityFormat::BinarySI => {
                let mut m = magnitude / NANOS_PER_UNIT;
                let mut e = 0;
                while m % 1024 == 0 && e < 6 {
                    m /= 1024;
                    e += 1;
                }
                let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][e];
                write!(f, "{sign}{m}{suffix}")
            }
            QuantityFormat::DecimalSI | QuantityFormat::DecimalExponent => {
                let mut m = magnitude;
                let mut e: i32 = -9;
                while m % 1000 == 0 && (format == QuantityFormat::DecimalExponent || e < 18) {
                    m /= 1000;
                    e += 3;
                }
                if format == QuantityFormat::DecimalExponent {
                    if e == 0 {
                        write!(f, "{sign}{m}")
                    } else {
                        write!(f, "{sign}{m}e{e}")
                    }
                } else {
                    let suffix = match e {
                        -9 => "n",
                        -6 => "u",
                        -3 => "m",
                        0 => "",
                        3 => "k",
                        6 => "M",
                        9 => "G",
                        12 => "T",
                        15 => "P",
                        _ => "E",
                    };
                    write!(f, "{sign}{m}{suffix}")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(s: &str) -> Quantity {
        match parse_quantity(s) {
            Ok(q) => q,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn parses_common_forms() {
        assert_eq!(q("100m").milli_value(), 100);
        assert_eq!(q("1Gi").value(), 1 << 30);
        assert_eq!(q("2").value(), 2);
        assert_eq!(q("1e3").value(), 1000);
        assert_eq!(q("0.5").milli_value(), 500);
        assert_eq!(q("1.5Gi").value(), 1536 << 20);
        assert_eq!(q("1E").value(), 1_000_000_000_000_000_000);
        assert_eq!(q("-1").value(), -1);
        assert_eq!(q(".5").milli_value(), 500);
        assert_eq!(q("5.").value(), 5);
        assert_eq!(q("+3k").value(), 3000);
        assert_eq!(q("1n").nanos(), 1);
        assert_eq!(q("1E-3").milli_value(), 1);
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(parse_quantity(""), Err(QuantityError::Format));
        assert_eq!(parse_quantity("abc"), Err(QuantityError::Format));
        assert_eq!(parse_quantity("1.2.3"), Err(QuantityError::Format));
        assert_eq!(parse_quantity("1 Gi"), Err(QuantityError::Format));
        assert_eq!(parse_quantity("1Gb"), Err(QuantityError::Format));
        assert_eq!(parse_quantity("1K"), Err(QuantityError::Suffix));
        assert_eq!(parse_quantity("1e"), Err(QuantityError::Suffix));
        assert_eq!(parse_quantity("1m3"), Err(QuantityError::Suffix));
        assert_eq!(parse_quantity("1e400"), Err(QuantityError::TooLarge));
        assert_eq!(
            parse_quantity("x").map_err(|e| e.to_string()),
            Err("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'".to_string())
        );
    }

    #[test]
    fn compares_by_value() {
        assert_eq!(q("1000m"), q("1"));
        assert_eq!(q("1Ki"), q("1024"));
        assert!(q("500m") < q("1"));
        assert!(q("1Gi") > q("1G"));
        assert!(q("-1") < q("0"));
    }

    #[test]
    fn canonical_form_matches_upstream() {
        for (input, want) in [
            ("0.5", "500m"),
            ("1000m", "1"),
            ("1500m", "1500m"),
            ("2000", "2k"),
            ("1500", "1500"),
            ("1024Mi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("512Ki", "512Ki"),
            ("0.5Ki", "512"),
            ("1e3", "1e3"),
            ("1.5e3", "1500"),
            ("0", "0"),
            ("0Mi", "0"),
            ("100Mi", "100Mi"),
            ("-1Gi", "-1Gi"),
            ("0.1m", "100u"),
            ("0.0000000001", "1n"),
            ("1E", "1E"),
        ] {
            assert_eq!(q(input).to_string(), want, "{input}");
        }
    }

    #[test]
    fn reads_json_numbers() {
        assert_eq!(Quantity::from_json(&json!(0.5)).map(|q| q.to_string()), Ok("500m".to_string()));
        assert_eq!(Quantity::from_json(&json!(2)).map(|q| q.to_string()), Ok("2".to_string()));
        assert!(Quantity::from_json(&json!(true)).is_err());
    }
}
