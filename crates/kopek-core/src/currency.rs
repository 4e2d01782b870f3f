//! ISO 4217 currencies and their minor-unit exponents.

use std::fmt;

/// A currency that kopek can bill in: an ISO 4217 code with its minor-unit exponent.
///
/// Only codes from [`CURRENCIES`] can be constructed, so a `Currency` always has a known
/// exponent.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    /// Where the code is in [`CURRENCIES`], which is in code order, so `Ord` orders by
    /// code. An index rather than the code's bytes: serializing a record looks the code up
    /// for every amount, and a search through the table showed in the billing run's
    /// profile.
    index: u8,
    exponent: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCurrency;

impl fmt::Display for UnknownCurrency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not an ISO 4217 currency code")
    }
}

impl Currency {
    /// Parses a three-letter code in either case (`"usd"`, `"USD"`).
    pub fn parse(code: &str) -> Result<Currency, UnknownCurrency> {
        let bytes = code.as_bytes();
        if bytes.len() != 3 {
            return Err(UnknownCurrency);
        }
        let upper = [
            bytes[0].to_ascii_uppercase(),
            bytes[1].to_ascii_uppercase(),
            bytes[2].to_ascii_uppercase(),
        ];
        let index = CURRENCIES
            .binary_search_by(|(c, _)| c.as_bytes().cmp(&upper[..]))
            .map_err(|_| UnknownCurrency)?;
        Ok(Currency {
            index: index as u8,
            exponent: CURRENCIES[index].1,
        })
    }

    /// The number of decimal places of the minor unit: JPY 0, USD 2, KWD 3.
    pub fn exponent(self) -> u8 {
        self.exponent
    }

    /// The upper-case ISO code, `"USD"`.
    pub fn code(self) -> &'static str {
        CURRENCIES[usize::from(self.index)].0
    }

    /// The lower-case code used on the wire, `"usd"`.
    pub fn lowercase(self) -> String {
        self.code().to_ascii_lowercase()
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Every active ISO 4217 currency with a defined minor unit, and that minor unit.
///
/// Source: ISO 4217 list one (SIX Financial Information, amendment 177, 2024). Codes
/// whose minor unit is "N.A." (precious metals, XDR, testing codes) cannot be billed in
/// and are left out on purpose.
pub const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("ANG", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BOV", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHE", 2),
    ("CHF", 2),
    ("CHW", 2),
    ("CLF", 4),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("COU", 2),
    ("CRC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MXV", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("USN", 2),
    ("UYI", 0),
    ("UYU", 2),
    ("UYW", 4),
    ("UZS", 2),
    ("VED", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XCG", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWG", 2),
];

// A currency's index into the list fits its `u8`.
const _: () = assert!(CURRENCIES.len() <= 256);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponents_match_iso_4217() {
        for (code, exponent) in [("JPY", 0), ("usd", 2), ("KWD", 3), ("clf", 4), ("eur", 2)] {
            assert_eq!(
                Currency::parse(code).unwrap().exponent(),
                exponent,
                "{code}"
            );
        }
    }

    #[test]
    fn unknown_codes_are_errors() {
        for code in ["", "US", "USDX", "ABC", "XAU", "XTS", "u$d"] {
            assert_eq!(Currency::parse(code), Err(UnknownCurrency), "{code:?}");
        }
    }

    #[test]
    fn list_is_sorted_and_unique() {
        assert!(CURRENCIES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(CURRENCIES.len() > 150);
    }

    #[test]
    fn code_round_trips() {
        for (code, _) in CURRENCIES {
            let c = Currency::parse(code).unwrap();
            assert_eq!(c.code(), *code);
            assert_eq!(Currency::parse(&c.lowercase()).unwrap(), c);
        }
    }
}
