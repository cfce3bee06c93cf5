//! Money without floats. A price is held as whole pico-dollars per token
//! (`$0.15` per million tokens = 150 000 p$/token) and a cost as whole
//! nano-dollars, so every cost is computed exactly and every sum of costs is
//! an integer sum. Decimal strings are parsed digit by digit; a float never
//! takes part.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a decimal amount was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AmountError(String);

/// A non-negative decimal (`"0.075"`, `"3"`, `"1.2e-7"`) as its significant
/// digits (leading zeros removed, possibly empty for zero) and the power of
/// ten they are scaled by: value = digits × 10^exponent.
fn decimal_parts(text: &str) -> Result<(String, i64), AmountError> {
    let bad = |why: &str| AmountError(format!("{text:?} is not a valid amount: {why}"));
    let t = text.trim();
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(i) => {
            let exp: i64 = t[i + 1..].parse().map_err(|_| bad("bad exponent"))?;
            (&t[..i], exp)
        }
        None => (t, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(bad("no digits"));
    }
    if !int_part
        .chars()
        .chain(frac_part.chars())
        .all(|c| c.is_ascii_digit())
    {
        return Err(bad("only digits and one '.' are allowed (no sign)"));
    }
    let digits = format!("{int_part}{frac_part}")
        .trim_start_matches('0')
        .to_owned();
    Ok((digits, exp.saturating_sub(frac_part.len() as i64)))
}

/// `10^power`, when it fits.
fn pow10(power: i64) -> Option<u128> {
    u32::try_from(power)
        .ok()
        .and_then(|p| 10u128.checked_pow(p))
}

/// Parse a non-negative decimal into an integer count of `10^-scale` units.
/// Rejects what cannot be represented exactly.
fn parse_scaled(text: &str, scale: u32) -> Result<u128, AmountError> {
    let bad = |why: &str| AmountError(format!("{text:?} is not a valid amount: {why}"));
    let (digits, exp) = decimal_parts(text)?;
    if digits.is_empty() {
        return Ok(0);
    }
    let value: u128 = digits.parse().map_err(|_| bad("too many digits"))?;
    let shift = exp.saturating_add(i64::from(scale));
    if shift >= 0 {
        return pow10(shift)
            .and_then(|f| value.checked_mul(f))
            .ok_or_else(|| bad("too large"));
    }
    match pow10(-shift) {
        Some(d) if value.is_multiple_of(d) => Ok(value / d),
        _ => Err(bad(&format!("more precision than 10^-{scale}"))),
    }
}

/// Parse a non-negative decimal of any precision into `10^-scale` units,
/// rounded once, halves up. Digits beyond the 38th significant one are
/// dropped first: they cannot move a half-up rounding that far below them.
fn parse_rounded(text: &str, scale: u32) -> Result<u128, AmountError> {
    let (digits, exp) = decimal_parts(text)?;
    let kept = &digits[..digits.len().min(38)];
    if kept.is_empty() {
        return Ok(0);
    }
    let dropped = (digits.len() - kept.len()) as i64;
    let value: u128 = kept
        .parse()
        .map_err(|_| AmountError(format!("{text:?} is not a valid amount")))?;
    let shift = exp.saturating_add(dropped).saturating_add(i64::from(scale));
    if shift >= 0 {
        return pow10(shift)
            .and_then(|f| value.checked_mul(f))
            .ok_or_else(|| AmountError(format!("{text:?} is too large")));
    }
    // value < 10^38, so a divisor of 10^39 or more leaves less than a tenth.
    let Some(divisor) = pow10(-shift) else {
        return Ok(0);
    };
    let (q, r) = (value / divisor, value % divisor);
    Ok(if r >= divisor - r { q + 1 } else { q })
}

/// A price per token, in whole pico-dollars (10^-12 USD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Price {
    pico_per_token: u64,
}

impl Price {
    /// Free (local models).
    pub const ZERO: Price = Price { pico_per_token: 0 };

    /// From USD per million tokens, as written in price tables (`"0.15"`).
    pub fn from_usd_per_mtok(text: &str) -> Result<Self, AmountError> {
        let v = parse_scaled(text, 6)?;
        let pico_per_token =
            u64::try_from(v).map_err(|_| AmountError(format!("{text:?} is too large")))?;
        Ok(Self { pico_per_token })
    }

    /// From USD per token, as OpenRouter's model list writes it (`"0.00000015"`).
    pub fn from_usd_per_token(text: &str) -> Result<Self, AmountError> {
        let v = parse_scaled(text, 12)?;
        let pico_per_token =
            u64::try_from(v).map_err(|_| AmountError(format!("{text:?} is too large")))?;
        Ok(Self { pico_per_token })
    }

    /// Pico-dollars per token.
    pub fn pico_per_token(self) -> u64 {
        self.pico_per_token
    }

    /// This price × `num` / `den` (a vendor's multiplier such as 0.1× for
    /// cache reads), truncated to the pico-dollar per token.
    pub fn times(self, (num, den): (u64, u64)) -> Price {
        let v = u128::from(self.pico_per_token) * u128::from(num) / u128::from(den.max(1));
        Price {
            pico_per_token: u64::try_from(v).unwrap_or(u64::MAX),
        }
    }

    /// The exact cost of `tokens` tokens, in pico-dollars.
    pub fn cost_pico(self, tokens: u64) -> u128 {
        u128::from(self.pico_per_token) * u128::from(tokens)
    }

    /// USD per million tokens as a decimal string (`"0.15"`).
    pub fn usd_per_mtok(self) -> String {
        decimal(u128::from(self.pico_per_token), 6)
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${}/Mtok", self.usd_per_mtok())
    }
}

impl Serialize for Price {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.usd_per_mtok())
    }
}

/// Accepts a string (`"0.15"`) or a TOML/JSON number (`0.15`). A number is
/// read through its shortest decimal form, which is what the user typed.
impl<'de> Deserialize<'de> for Price {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Int(u64),
            Float(f64),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Text(t) => t,
            Raw::Int(i) => i.to_string(),
            Raw::Float(f) if f.is_finite() && f >= 0.0 => format!("{f}"),
            Raw::Float(f) => return Err(serde::de::Error::custom(format!("invalid price {f}"))),
        };
        Price::from_usd_per_mtok(&text).map_err(serde::de::Error::custom)
    }
}

/// An amount of money in whole nano-dollars (10^-9 USD). Costs are rounded
/// to the nano-dollar once, when computed; sums of costs are exact.
/// Serialized as the integer count of nano-dollars.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Cost {
    nanos: i64,
}

impl Cost {
    /// Nothing.
    pub const ZERO: Cost = Cost { nanos: 0 };

    /// From whole nano-dollars.
    pub const fn from_nanos(nanos: i64) -> Self {
        Self { nanos }
    }

    /// Whole nano-dollars.
    pub const fn nanos(self) -> i64 {
        self.nanos
    }

    /// Round pico-dollars to the nearest nano-dollar (halves away from zero).
    pub fn from_pico(pico: u128) -> Self {
        let nanos = (pico + 500) / 1000;
        Self {
            nanos: i64::try_from(nanos).unwrap_or(i64::MAX),
        }
    }

    /// From a USD amount written as a decimal (`"0.0000123"`, `"1.2e-7"`,
    /// any number of digits), rounded once to the nearest nano-dollar
    /// (halves away from zero); what providers such as OpenRouter report.
    pub fn from_usd(text: &str) -> Result<Self, AmountError> {
        let t = text.trim();
        let (neg, t) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t.strip_prefix('+').unwrap_or(t)),
        };
        let nanos = parse_rounded(t, 9)?;
        let nanos =
            i64::try_from(nanos).map_err(|_| AmountError(format!("{text:?} is too large")))?;
        Ok(Self {
            nanos: if neg { -nanos } else { nanos },
        })
    }

    /// The USD amount as an exact decimal string (`"0.000123456"`).
    pub fn usd(self) -> String {
        let s = decimal(u128::from(self.nanos.unsigned_abs()), 9);
        if self.nanos < 0 { format!("-{s}") } else { s }
    }

    /// The USD amount as a float, for JSON and charts only; never summed.
    pub fn as_f64(self) -> f64 {
        // Parsing the exact decimal gives the float nearest to it.
        self.usd().parse().unwrap_or(0.0)
    }

    /// Checked sum.
    pub fn checked_add(self, other: Cost) -> Option<Cost> {
        self.nanos
            .checked_add(other.nanos)
            .map(|nanos| Cost { nanos })
    }
}

impl std::ops::Add for Cost {
    type Output = Cost;
    fn add(self, other: Cost) -> Cost {
        Cost {
            nanos: self.nanos.saturating_add(other.nanos),
        }
    }
}

impl std::iter::Sum for Cost {
    fn sum<I: Iterator<Item = Cost>>(iter: I) -> Cost {
        iter.fold(Cost::ZERO, |a, b| a + b)
    }
}

impl fmt::Display for Cost {
    /// `$0.000123` style: at least 2 decimals, at most 9, no trailing zeros beyond 2.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.usd();
        let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
        let mut frac = frac.trim_end_matches('0').to_owned();
        while frac.len() < 2 {
            frac.push('0');
        }
        write!(f, "${int}.{frac}")
    }
}

impl FromStr for Cost {
    type Err = AmountError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cost::from_usd(s)
    }
}

/// `value * 10^-scale` as a decimal string without trailing zeros
/// (but with at least one digit after the point when there is a fraction).
fn decimal(value: u128, scale: u32) -> String {
    let unit = 10u128.pow(scale);
    let int = value / unit;
    let frac = value % unit;
    if frac == 0 {
        return int.to_string();
    }
    let frac = format!("{frac:0width$}", width = scale as usize);
    format!("{int}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_exactly() {
        assert_eq!(
            Price::from_usd_per_mtok("0.15").unwrap().pico_per_token(),
            150_000
        );
        assert_eq!(
            Price::from_usd_per_mtok("0.075").unwrap().pico_per_token(),
            75_000
        );
        assert_eq!(
            Price::from_usd_per_mtok("15").unwrap().pico_per_token(),
            15_000_000
        );
        assert_eq!(
            Price::from_usd_per_mtok(".5").unwrap().pico_per_token(),
            500_000
        );
        assert_eq!(
            Price::from_usd_per_token("0.00000015").unwrap(),
            Price::from_usd_per_mtok("0.15").unwrap()
        );
        assert_eq!(
            Price::from_usd_per_token("1.5e-7")
                .unwrap()
                .pico_per_token(),
            150_000
        );
        assert!(Price::from_usd_per_mtok("-1").is_err());
        assert!(
            Price::from_usd_per_mtok("0.0000001").is_err(),
            "below a pico-dollar per token"
        );
        assert!(Price::from_usd_per_mtok("abc").is_err());
        assert_eq!(
            Price::from_usd_per_mtok("0.15").unwrap().usd_per_mtok(),
            "0.15"
        );
    }

    #[test]
    fn prices_deserialize_from_strings_and_numbers() {
        #[derive(Deserialize)]
        struct T {
            a: Price,
            b: Price,
            c: Price,
        }
        let t: T = toml::from_str("a = \"0.1\"\nb = 0.1\nc = 3").unwrap();
        assert_eq!(t.a, t.b);
        assert_eq!(t.c.pico_per_token(), 3_000_000);
        assert!(toml::from_str::<T>("a = -0.1\nb = 1\nc = 1").is_err());
    }

    #[test]
    fn costs_are_exact_and_round_once() {
        // 1234 tokens at $0.15/Mtok = $0.0001851 exactly.
        let p = Price::from_usd_per_mtok("0.15").unwrap();
        let c = Cost::from_pico(p.cost_pico(1234));
        assert_eq!(c.nanos(), 185_100);
        assert_eq!(c.usd(), "0.0001851");
        assert_eq!(c.to_string(), "$0.0001851");
        // 3 tokens at $0.0375/Mtok = 112.5 nano-dollars: rounded once, half up.
        let cheap = Price::from_usd_per_mtok("0.0375").unwrap();
        assert_eq!(cheap.cost_pico(3), 112_500);
        assert_eq!(Cost::from_pico(cheap.cost_pico(3)).nanos(), 113);
        // 1 token at $0.000499/Mtok is 499 pico-dollars: below half a nano-dollar.
        let tiny = Price::from_usd_per_mtok("0.000499").unwrap();
        assert_eq!(Cost::from_pico(tiny.cost_pico(1)).nanos(), 0);
        // A float sum of ten 0.1s is not 1; the integer sum is.
        let dime = Cost::from_usd("0.1").unwrap();
        let total: Cost = std::iter::repeat_n(dime, 10).sum();
        assert_eq!(total.usd(), "1");
        assert_eq!(Cost::from_nanos(5).to_string(), "$0.000000005");
        assert_eq!(Cost::from_nanos(1_500_000_000).to_string(), "$1.50");
    }

    #[test]
    fn reported_costs_round_to_the_nano_dollar() {
        assert_eq!(Cost::from_usd("0.0000123").unwrap().nanos(), 12_300);
        assert_eq!(Cost::from_usd("0.00001234567891").unwrap().nanos(), 12_346);
        assert_eq!(Cost::from_usd("1.2e-5").unwrap().nanos(), 12_000);
        assert_eq!(Cost::from_usd("0").unwrap(), Cost::ZERO);
        assert!(Cost::from_usd("x").is_err());
        assert_eq!(Cost::from_usd("0.000123456").unwrap().as_f64(), 0.000123456);
    }

    #[test]
    fn reported_costs_in_any_json_number_form_are_exact() {
        // 1.2e-7 USD = 120 nano-dollars, exactly (an f64 round trip is not).
        assert_eq!(Cost::from_usd("1.2e-7").unwrap().nanos(), 120);
        assert_eq!(Cost::from_usd("1.2E-7").unwrap().nanos(), 120);
        assert_eq!(Cost::from_usd("12e-8").unwrap().nanos(), 120);
        assert_eq!(Cost::from_usd("0.12e-6").unwrap().nanos(), 120);
        assert_eq!(Cost::from_usd("1.25e+2").unwrap().nanos(), 125_000_000_000);
        // Half a nano-dollar rounds up, just below it rounds down.
        assert_eq!(Cost::from_usd("5e-10").unwrap().nanos(), 1);
        assert_eq!(
            Cost::from_usd("4.999999999999999999999999e-10")
                .unwrap()
                .nanos(),
            0
        );
        // More digits than any float holds: 0.000001234567890123456789 USD.
        assert_eq!(
            Cost::from_usd("0.000001234567890123456789")
                .unwrap()
                .nanos(),
            1_235
        );
        assert_eq!(
            Cost::from_usd("1234567.8901234567890123456789012345678901234567")
                .unwrap()
                .nanos(),
            1_234_567_890_123_457
        );
        assert_eq!(Cost::from_usd("1e-400").unwrap(), Cost::ZERO);
        assert_eq!(Cost::from_usd("-0.5e-9").unwrap().nanos(), -1);
        assert!(Cost::from_usd("1e400").is_err(), "too large, not a panic");
        assert!(Cost::from_usd("1e").is_err());
        assert!(Cost::from_usd("e5").is_err());
        assert!(Cost::from_usd("NaN").is_err());
    }
}
