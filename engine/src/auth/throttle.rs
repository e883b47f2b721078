//! Login throttling: failed attempts are counted per account and per client IP in a sliding
//! window; above the limit, further attempts fail with `RATE_LIMITED` before any password is
//! checked. A successful login clears the account's count. The counts live in process memory
//! (per replica).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{AppError, AppResult};

/// Failures allowed per account within the window.
pub const MAX_PER_ACCOUNT: usize = 5;
/// Failures allowed per client IP within the window.
pub const MAX_PER_IP: usize = 20;
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

impl LoginThrottle {
    fn keys(account: &str, ip: Option<ClientIp>) -> Vec<(String, usize)> {
        let mut keys = vec![(format!("account:{account}"), MAX_PER_ACCOUNT)];
        if let Some(ip) = ip {
            keys.push((format!("ip:{}", ip.0), MAX_PER_IP));
        }
        keys
    }

    /// Fails with `RATE_LIMITED` when the account or the IP is over its limit.
    pub fn check(&self, account: &str, ip: Option<ClientIp>) -> AppResult<()> {
        let Ok(mut map) = self.failures.lock() else {
            return Ok(());
        };
        let now = Instant::now();
        for (key, max) in Self::keys(account, ip) {
            if let Some(times) = map.get_mut(&key) {
                while times
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > WINDOW)
                {
                    times.pop_front();
                }
                if times.len() >= max {
                    return Err(AppError::RateLimited);
                }
            }
        }
        Ok(())
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
            for (key, _) in Self::keys(account, ip) {
                map.entry(key).or_default().push_back(now);
            }
        }
    }

    /// Clears the account's failures after a successful login.
    pub fn succeeded(&self, account: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(&format!("account:{account}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_account_and_per_ip() {
        let throttle = LoginThrottle::default();
        let ip = Some(ClientIp(IpAddr::from([10, 0, 0, 1])));
        for _ in 0..MAX_PER_ACCOUNT {
            throttle.check("t:a@x", ip).unwrap();
            throttle.failed("t:a@x", ip);
        }
        assert!(matches!(
            throttle.check("t:a@x", ip),
            Err(AppError::RateLimited)
        ));
        throttle.check("t:b@x", None).unwrap();
        throttle.succeeded("t:a@x");
        throttle.check("t:a@x", None).unwrap();
        for i in 0..MAX_PER_IP {
            throttle.failed(&format!("t:{i}@x"), ip);
        }
        assert!(matches!(
            throttle.check("t:new@x", ip),
            Err(AppError::RateLimited)
        ));
        throttle
            .check("t:new@x", Some(ClientIp(IpAddr::from([10, 0, 0, 2]))))
            .unwrap();
    }
}
