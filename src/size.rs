//! Sizes of files: one formatter (decimal units, three significant digits, as `list` shows
//! them) and one parser that every size option accepts.

use std::fmt;
use std::str::FromStr;

/// A number of bytes. `Display` writes decimal units with three significant digits
/// (`25.0 MB`, `334 MB`, `8.05 GB`); `FromStr` reads `20M`, `20MB`, `20 MB`, `1.5G`, `500MiB`,
/// `1000000` (bytes) and, for rates, the same with `/s`.
///
/// ```
/// use strata_model::ByteSize;
/// assert_eq!(ByteSize(25_008_064).to_string(), "25.0 MB");
/// assert_eq!("1.5G".parse::<ByteSize>()?, ByteSize(1_500_000_000));
/// assert_eq!("500MiB".parse::<ByteSize>()?, ByteSize(500 << 20));
/// assert_eq!("20 MB/s".parse::<ByteSize>()?, ByteSize(20_000_000));
/// # Ok::<(), strata_model::ParseSizeError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
        let bytes = self.0;
        if bytes < 1000 {
            return write!(f, "{bytes} B");
        }
        let mut value = bytes as f64;
        let mut unit = 0;
        while value >= 999.5 && unit < UNITS.len() - 1 {
            value /= 1000.0;
            unit += 1;
        }
        let unit = UNITS[unit];
        if value >= 99.95 {
            write!(f, "{value:.0} {unit}")
        } else if value >= 9.995 {
            write!(f, "{value:.1} {unit}")
        } else {
            write!(f, "{value:.2} {unit}")
        }
    }
}

/// Why a size could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a size such as 20MB, 1.5G or 500MiB: {reason}")]
pub struct ParseSizeError {
    input: String,
    reason: &'static str,
}

impl FromStr for ByteSize {
    type Err = ParseSizeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseSizeError { input: s.to_string(), reason };
        let t = s.trim();
        let t = t.strip_suffix("/s").or_else(|| t.strip_suffix("/S")).unwrap_or(t).trim_end();
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1_000,
            "m" | "mb" => 1_000_000,
            "g" | "gb" => 1_000_000_000,
            "t" | "tb" => 1_000_000_000_000,
            "ki" | "kib" => 1 << 10,
            "mi" | "mib" => 1 << 20,
            "gi" | "gib" => 1 << 30,
            "ti" | "tib" => 1 << 40,
            _ => {
                return Err(err("unknown unit; use B, kB, MB, GB, TB (or k, M, G, T) or KiB, MiB, GiB, TiB"))
            }
        };
        // Exact decimal arithmetic: `25.008064MB` is 25008064 bytes, not a float's guess.
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
            return Err(err("no number"));
        }
        let digits = |d: &str| -> Result<u128, ParseSizeError> {
            if d.is_empty() {
                Ok(0)
            } else if d.len() > 30 {
                Err(err("too large"))
            } else {
                d.parse().map_err(|_| err("not a number"))
            }
        };
        let scale = 10u128.pow(fraction.len() as u32);
        let (whole, fraction) = (digits(whole)?, digits(fraction)?);
        let scaled = whole
            .checked_mul(scale)
            .and_then(|w| w.checked_add(fraction))
            .and_then(|n| n.checked_mul(u128::from(multiplier)))
            .ok_or_else(|| err("too large"))?;
        if scaled % scale != 0 {
            return Err(err("not a whole number of bytes"));
        }
        u64::try_from(scaled / scale).map(ByteSize).map_err(|_| err("too large"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<u64, ParseSizeError> {
        s.parse::<ByteSize>().map(|b| b.0)
    }

    #[test]
    fn sizes_have_three_significant_digits() {
        let show = |n| ByteSize(n).to_string();
        assert_eq!(show(25_008_064), "25.0 MB");
        assert_eq!(show(45_949_216), "45.9 MB");
        assert_eq!(show(333_590_944), "334 MB");
        assert_eq!(show(8_047_105_824), "8.05 GB");
        assert_eq!(show(999_999), "1.00 MB");
        assert_eq!(show(512), "512 B");
        assert_eq!(show(1_500), "1.50 kB");
    }

    #[test]
    fn every_spelling_of_a_size_parses() {
        for (input, bytes) in [
            ("20M", 20_000_000),
            ("20MB", 20_000_000),
            ("20 MB", 20_000_000),
            ("20mb", 20_000_000),
            ("1.5G", 1_500_000_000),
            ("500MiB", 500 << 20),
            ("8GiB", 8 << 30),
            ("10GB", 10_000_000_000),
            ("1.5k", 1_500),
            ("1000000", 1_000_000),
            ("0", 0),
            ("20M/s", 20_000_000),
            ("25.008064MB", 25_008_064),
            (".5k", 500),
        ] {
            assert_eq!(parse(input), Ok(bytes), "{input}");
        }
        for bad in ["", "ten", "5XB", "5x", "1.5", "1..5M", "-1M", "99999999999999999999999T", "M"] {
            assert!(parse(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(parse("5XB").unwrap_err().to_string().contains("unknown unit"));
    }
}
