//! The proleptic Gregorian calendar in UTC, on Unix seconds.
//!
//! Written here rather than taken from a date crate because billing needs exactly three
//! operations (split an instant into a date and a time of day, join them back, and count
//! the days of a month), and owning them keeps kopek-core free of time-zone machinery.

pub const SECONDS_PER_DAY: i64 = 86_400;

/// A calendar date in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: i64,
    /// 1..=12
    pub month: u32,
    /// 1..=31
    pub day: u32,
}

pub fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap_year(year) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 for a civil date (Howard Hinnant's `days_from_civil`).
pub fn days_from_date(date: Date) -> i64 {
    let year = if date.month <= 2 {
        date.year - 1
    } else {
        date.year
    };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(date.month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(date.day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The civil date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
pub fn date_from_days(days: i64) -> Date {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    Date { year, month, day }
}

/// Splits Unix seconds into a UTC date and the seconds since that day's midnight.
pub fn split(timestamp: i64) -> (Date, i64) {
    (
        date_from_days(timestamp.div_euclid(SECONDS_PER_DAY)),
        timestamp.rem_euclid(SECONDS_PER_DAY),
    )
}

pub fn join(date: Date, seconds_of_day: i64) -> i64 {
    days_from_date(date) * SECONDS_PER_DAY + seconds_of_day
}

/// Moves a date by whole months, keeping its day unless the target month is shorter, in
/// which case it lands on that month's last day (Jan 31 + 1 month = Feb 28 or 29).
pub fn add_months(date: Date, months: i64) -> Date {
    let index = date.year * 12 + i64::from(date.month - 1) + months;
    let year = index.div_euclid(12);
    let month = index.rem_euclid(12) as u32 + 1;
    Date {
        year,
        month,
        day: date.day.min(days_in_month(year, month)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_dates() {
        assert_eq!(
            split(0),
            (
                Date {
                    year: 1970,
                    month: 1,
                    day: 1
                },
                0
            )
        );
        // 2024-02-29T12:00:00Z, a leap day (from `date -u -d @1709208000`).
        assert_eq!(
            split(1_709_208_000),
            (
                Date {
                    year: 2024,
                    month: 2,
                    day: 29
                },
                43_200
            )
        );
        assert_eq!(
            split(-1),
            (
                Date {
                    year: 1969,
                    month: 12,
                    day: 31
                },
                86_399
            )
        );
        assert_eq!(
            add_months(
                Date {
                    year: 2023,
                    month: 1,
                    day: 31
                },
                1
            )
            .day,
            28
        );
        assert_eq!(
            add_months(
                Date {
                    year: 2024,
                    month: 1,
                    day: 31
                },
                1
            )
            .day,
            29
        );
        assert_eq!(
            add_months(
                Date {
                    year: 2024,
                    month: 11,
                    day: 30
                },
                3
            ),
            Date {
                year: 2025,
                month: 2,
                day: 28
            }
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn days_round_trip(days in -1_000_000i64..1_000_000) {
            let date = date_from_days(days);
            prop_assert!(date.day >= 1 && date.day <= days_in_month(date.year, date.month));
            prop_assert_eq!(days_from_date(date), days);
            let next = date_from_days(days + 1);
            prop_assert!(next > date);
        }
    }
}
