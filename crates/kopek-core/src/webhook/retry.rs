//! When a webhook delivery is tried again, and when it gives up.
//!
//! A delivery's first attempt goes out as soon as its event exists; after each failure
//! the next waits the schedule's next delay, stretched by up to a fifth (jitter, so a
//! receiver that was down is not hit by every delivery at the same second) and never
//! shorter than the receiver's `Retry-After`. After the last delay's attempt fails the
//! delivery is dead: kept, listable and replayable, but no longer tried.

/// The default delays between attempts, in seconds: 11 retries over about three days
/// and six hours (Stripe retries for up to three days).
pub const DELAYS_DEFAULT: [i64; 11] = [
    60,
    5 * 60,
    30 * 60,
    2 * 3_600,
    5 * 3_600,
    10 * 3_600,
    12 * 3_600,
    12 * 3_600,
    12 * 3_600,
    12 * 3_600,
    12 * 3_600,
];

/// The longest wait a receiver's `Retry-After` can ask for: longer requests are cut to
/// this, so a receiver cannot park a delivery beyond the schedule's reach.
pub const RETRY_AFTER_MAX_S: i64 = 24 * 3_600;

/// An endpoint whose deliveries have failed without a success for this long is
/// disabled (and its account told).
pub const FAILING_DISABLE_S: i64 = 5 * 24 * 3_600;

/// The delays between attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    delays: Vec<i64>,
}

impl Default for Schedule {
    fn default() -> Schedule {
        Schedule {
            delays: DELAYS_DEFAULT.to_vec(),
        }
    }
}

/// What follows a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try again at this time.
    RetryAt(i64),
    /// The schedule is spent.
    Dead,
}

impl Schedule {
    /// A schedule from delays written like `1m,5m,30m,2h,1d` (seconds without a unit):
    /// 1 to 30 of them, each 1 second to 7 days.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let delays = text
            .split(',')
            .map(|d| parse_delay(d.trim()))
            .collect::<Result<Vec<i64>, String>>()?;
        if delays.is_empty() || delays.len() > 30 {
            return Err("a retry schedule has 1 to 30 delays".to_owned());
        }
        Ok(Schedule { delays })
    }

    pub fn delays(&self) -> &[i64] {
        &self.delays
    }

    /// What follows the failure of attempt number `attempt` (1 for the first) made at
    /// `now`. `jitter` is any number, fixed per delivery and attempt (a hash), so the
    /// same failure always schedules the same retry; `retry_after` is what the receiver
    /// asked for, in seconds.
    pub fn after_failure(
        &self,
        attempt: u32,
        now: i64,
        jitter: u64,
        retry_after: Option<i64>,
    ) -> Next {
        let Some(&delay) = self.delays.get(attempt.saturating_sub(1) as usize) else {
            return Next::Dead;
        };
        let stretch = match delay / 5 {
            0 => 0,
            span => (jitter % (span as u64 + 1)) as i64,
        };
        let asked = retry_after.unwrap_or(0).clamp(0, RETRY_AFTER_MAX_S);
        Next::RetryAt(now + (delay + stretch).max(asked))
    }
}

fn parse_delay(text: &str) -> Result<i64, String> {
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "s"),
    };
    let unit_s = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(format!("`{text}` is not a delay (write 30s, 5m, 2h or 1d)")),
    };
    let seconds = number
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_s))
        .ok_or_else(|| format!("`{text}` is not a delay (write 30s, 5m, 2h or 1d)"))?;
    if !(1..=7 * 86_400).contains(&seconds) {
        return Err(format!("`{text}`: each delay is 1 second to 7 days"));
    }
    Ok(seconds)
}

/// How a receiver's answer counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: delivered.
    Delivered,
    /// 410 Gone: the receiver asks never to be called again; the endpoint is disabled.
    Gone,
    /// Anything else (redirects included, which are not followed): try again.
    Failed,
}

pub fn verdict(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        410 => Verdict::Gone,
        _ => Verdict::Failed,
    }
}

/// Seconds to wait from a `Retry-After` value: its seconds form, or its HTTP-date form
/// (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 §5.6.7) counted from `now`. Anything else
/// is ignored.
pub fn retry_after_seconds(value: &str, now: i64) -> Option<i64> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u32>() {
        return Some(i64::from(seconds));
    }
    http_date(value).map(|at| (at - now).max(0))
}

fn http_date(value: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (_weekday, rest) = value.split_once(", ")?;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = parts[..] else {
        return None;
    };
    let month = MONTHS.iter().position(|m| *m == month)? as u32 + 1;
    let (day, year): (u32, i64) = (day.parse().ok()?, year.parse().ok()?);
    if !(1..=crate::calendar::days_in_month(year, month)).contains(&day) || year < 1970 {
        return None;
    }
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms[..] else { return None };
    if !(0..24).contains(&h) || !(0..60).contains(&m) || !(0..61).contains(&s) {
        return None;
    }
    let date = crate::calendar::Date { year, month, day };
    Some(crate::calendar::join(date, h * 3_600 + m * 60 + s))
}
