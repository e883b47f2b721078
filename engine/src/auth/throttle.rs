//! Login throttling that slows guessing without letting anyone lock others out.
//!
//! Failed logins are counted in a sliding window (15 minutes) under three keys:
//!
//! - **account and client address**: after [`MAX_PER_ACCOUNT_AND_ADDRESS`] failures that pair
//!   is refused (`RATE_LIMITED`, with the seconds until it frees up) — even the right password
//!   waits. Other addresses can still log in to the account, and the address can still log in
//!   to other accounts, so a guesser cannot lock a victim out and one address behind a proxy
//!   (every user of a BFF) cannot lock everyone out.
//! - **account** (all addresses) and **client address** (all accounts): beyond their budgets
//!   ([`ACCOUNT_BUDGET`], [`ADDRESS_BUDGET`]) every further attempt is delayed, the delay
//!   doubling with the excess up to [`MAX_DELAY`]: slower for everybody on that key, refused
//!   for nobody.
//!
//! A successful login clears its pair. Counts live in process memory (per replica). The
//! client address is the peer's, or from `X-Forwarded-For` only when the peer is a configured
//! trusted proxy (`http.trusted_proxies`, see `http::client_address`).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{AppError, AppResult};

/// Failures of one account from one address before that pair is refused for the window.
pub const MAX_PER_ACCOUNT_AND_ADDRESS: usize = 5;
/// Failures of one account (from all addresses) before its attempts are delayed.
pub const ACCOUNT_BUDGET: usize = 20;
/// Failures from one address (for all accounts) before its attempts are delayed.
pub const ADDRESS_BUDGET: usize = 50;
/// The first delay beyond a budget; it doubles every [`DOUBLE_EVERY`] further failures.
pub const FIRST_DELAY: Duration = Duration::from_millis(250);
/// Failures beyond a budget per doubling of the delay.
pub const DOUBLE_EVERY: usize = 5;
/// The longest delay.
pub const MAX_DELAY: Duration = Duration::from_secs(4);
/// The window.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Keys tracked before expired ones are swept.
const MAX_TRACKED: usize = 100_000;

/// The client address of a request, when known (set by the HTTP layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Sliding-window failure counters.
#[derive(Clone, Default)]
pub struct LoginThrottle {
    failures: Arc<Mutex<HashMap<String, VecDeque<Instant>>>>,
}

fn pair_key(account: &str, ip: Option<ClientIp>) -> String {
    match ip {
        Some(ip) => format!("pair:{account}|{}", ip.0),
        None => format!("pair:{account}|-"),
    }
}

/// The delay for `failures` counted against a budget.
fn backoff(failures: usize, budget: usize) -> Duration {
    if failures < budget {
        return Duration::ZERO;
    }
    let doublings = ((failures - budget) / DOUBLE_EVERY).min(16) as u32;
    FIRST_DELAY
        .saturating_mul(2_u32.saturating_pow(doublings))
        .min(MAX_DELAY)
}

impl LoginThrottle {
    fn keys(account: &str, ip: Option<ClientIp>) -> Vec<String> {
        let mut keys = vec![pair_key(account, ip), format!("account:{account}")];
        if let Some(ip) = ip {
            keys.push(format!("address:{}", ip.0));
        }
        keys
    }

    fn live(map: &mut HashMap<String, VecDeque<Instant>>, key: &str, now: Instant) -> usize {
        let Some(times) = map.get_mut(key) else {
            return 0;
        };
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) > WINDOW)
        {
            times.pop_front();
        }
        times.len()
    }

    /// Before checking a password: `RATE_LIMITED` when the account is locked for this
    /// address, otherwise how long the attempt must wait (zero within the budgets).
    pub fn check(&self, account: &str, ip: Option<ClientIp>) -> AppResult<Duration> {
        let Ok(mut map) = self.failures.lock() else {
            return Ok(Duration::ZERO);
        };
        let now = Instant::now();
        let pair = pair_key(account, ip);
        if Self::live(&mut map, &pair, now) >= MAX_PER_ACCOUNT_AND_ADDRESS {
            let oldest = map
                .get(&pair)
                .and_then(|t| t.front().copied())
                .unwrap_or(now);
            let free_at = (oldest + WINDOW).saturating_duration_since(now);
            return Err(AppError::RateLimited {
                retry_after_secs: free_at.as_secs().max(1),
            });
        }
        let account_delay = backoff(
            Self::live(&mut map, &format!("account:{account}"), now),
            ACCOUNT_BUDGET,
        );
        let address_delay = match ip {
            Some(ip) => backoff(
                Self::live(&mut map, &format!("address:{}", ip.0), now),
                ADDRESS_BUDGET,
            ),
            None => Duration::ZERO,
        };
        Ok(account_delay.max(address_delay))
    }

    /// Counts a failed attempt.
    pub fn failed(&self, account: &str, ip: Option<ClientIp>) {
        if let Ok(mut map) = self.failures.lock() {
            let now = Instant::now();
            // Attackers choose the keys: forget what is out of the window when it grows.
            if map.len() >= MAX_TRACKED {
                map.retain(|_, times| {
                    times
                        .back()
                        .is_some_and(|t| now.duration_since(*t) <= WINDOW)
                });
            }
            for key in Self::keys(account, ip) {
                map.entry(key).or_default().push_back(now);
            }
        }
    }

    /// Clears the pair's failures after a successful login.
    pub fn succeeded(&self, account: &str, ip: Option<ClientIp>) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(&pair_key(account, ip));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Option<ClientIp> {
        Some(ClientIp(IpAddr::from([192, 0, 2, last])))
    }

    #[test]
    fn a_pair_is_locked_but_not_the_account_nor_the_address() {
        let throttle = LoginThrottle::default();
        for _ in 0..MAX_PER_ACCOUNT_AND_ADDRESS {
            assert_eq!(throttle.check("t:a@x", ip(1)).unwrap(), Duration::ZERO);
            throttle.failed("t:a@x", ip(1));
        }
        match throttle.check("t:a@x", ip(1)) {
            Err(AppError::RateLimited { retry_after_secs }) => {
                assert!(retry_after_secs > 800 && retry_after_secs <= 900);
            }
            other => panic!("{other:?}"),
        }
        assert!(throttle.check("t:a@x", ip(2)).is_ok(), "another address");
        assert!(throttle.check("t:b@x", ip(1)).is_ok(), "another account");
        throttle.succeeded("t:a@x", ip(1));
        assert!(throttle.check("t:a@x", ip(1)).is_ok());
    }

    #[test]
    fn beyond_the_budgets_attempts_wait_longer_and_longer_but_are_never_refused() {
        let throttle = LoginThrottle::default();
        for i in 0..ADDRESS_BUDGET {
            throttle.failed(&format!("t:{i}@x"), ip(9));
        }
        let first = throttle.check("t:new@x", ip(9)).unwrap();
        assert_eq!(first, FIRST_DELAY);
        for i in 0..DOUBLE_EVERY * 3 {
            throttle.failed(&format!("t:more{i}@x"), ip(9));
        }
        let later = throttle.check("t:new@x", ip(9)).unwrap();
        assert_eq!(later, FIRST_DELAY * 8);
        for i in 0..DOUBLE_EVERY * 20 {
            throttle.failed(&format!("t:lots{i}@x"), ip(9));
        }
        assert_eq!(throttle.check("t:new@x", ip(9)).unwrap(), MAX_DELAY);
        assert_eq!(
            throttle.check("t:new@x", ip(10)).unwrap(),
            Duration::ZERO,
            "other addresses are not slowed"
        );
        // One account guessed at from many addresses slows down too.
        for i in 0..ACCOUNT_BUDGET {
            throttle.failed("t:victim@x", ip(100 + i as u8));
        }
        assert_eq!(throttle.check("t:victim@x", ip(250)).unwrap(), FIRST_DELAY);
    }
}
