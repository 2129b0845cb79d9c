//! The tunable rules: lifetimes, limits and defaults.

use time::Duration;

use crate::ports::{AccountLimit, RateRule};

/// The most wrong codes an account may have per window, whatever the
/// configuration sets.
pub const MAX_ACCOUNT_FAILURES: u32 = 100;

/// Lifetimes, limits and defaults that use cases apply. The server builds it
/// from configuration; [`Policy::default`] returns the documented defaults.
#[derive(Clone, Debug)]
pub struct Policy {
    /// How long a one-time code stays valid after it is sent.
    pub code_lifetime: Duration,
    /// Wrong attempts after which a code is dead.
    pub code_max_attempts: u32,
    /// bcrypt cost for code hashes (4 to 31).
    pub code_hash_cost: u32,
    /// How long a session lives after verification or its last extend.
    pub session_lifetime: Duration,
    /// How long after verification a session dies, however often extended.
    pub session_max_lifetime: Duration,
    /// A session unused for this long is dead; `None` turns the rule off.
    pub session_idle_timeout: Option<Duration>,
    /// Minimum interval between two writes of a session's last-seen time.
    pub session_touch_interval: Duration,
    /// The largest `days` a key pair may be created for.
    pub key_pair_max_days: u32,
    /// Roles of a new user.
    pub default_roles: Vec<String>,
    /// Groups of a new user.
    pub default_groups: Vec<String>,
    /// How long an account whose registration was never verified is kept.
    pub unverified_account_ttl: Duration,
    /// Wrong codes per account before every code of it is refused.
    pub account_failures: AccountLimit,
    /// Codes mailed to one address.
    pub codes_per_address: RateRule,
    /// Logins started from one client address.
    pub logins_per_client: RateRule,
    /// Registrations from one client address.
    pub registrations_per_client: RateRule,
    /// Emails added from one client address.
    pub emails_per_client: RateRule,
    /// Code verifications tried from one client address.
    pub verifications_per_client: RateRule,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            code_lifetime: Duration::minutes(10),
            code_max_attempts: 5,
            code_hash_cost: 10,
            session_lifetime: Duration::hours(24),
            session_max_lifetime: Duration::days(30),
            session_idle_timeout: None,
            session_touch_interval: Duration::minutes(1),
            key_pair_max_days: 365,
            default_roles: vec!["user".to_owned()],
            default_groups: vec!["public".to_owned()],
            unverified_account_ttl: Duration::hours(24),
            account_failures: AccountLimit {
                max_failures: 20,
                window: Duration::hours(1),
            },
            codes_per_address: RateRule {
                max: 5,
                window: Duration::minutes(15),
                min_gap: Duration::seconds(60),
            },
            logins_per_client: per_client(30, Duration::minutes(15)),
            registrations_per_client: per_client(10, Duration::hours(1)),
            emails_per_client: per_client(10, Duration::hours(1)),
            verifications_per_client: per_client(60, Duration::minutes(15)),
        }
    }
}

fn per_client(max: u32, window: Duration) -> RateRule {
    RateRule {
        max,
        window,
        min_gap: Duration::ZERO,
    }
}

/// A problem with a policy value, found before the server starts.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {setting}: {reason}")]
pub struct PolicyError {
    pub setting: &'static str,
    pub reason: &'static str,
}

impl Policy {
    /// Checks that every value is in range.
    ///
    /// # Errors
    /// Returns the first setting that is out of range.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let err = |setting, reason| Err(PolicyError { setting, reason });
        if !(4..=31).contains(&self.code_hash_cost) {
            return err("code_hash_cost", "must be between 4 and 31");
        }
        if self.code_lifetime <= Duration::ZERO {
            return err("code_lifetime", "must be positive");
        }
        if self.code_max_attempts == 0 {
            return err("code_max_attempts", "must be at least 1");
        }
        if self.session_lifetime <= Duration::ZERO {
            return err("session_lifetime", "must be positive");
        }
        if self.session_max_lifetime < self.session_lifetime {
            return err(
                "session_max_lifetime",
                "must be at least the session lifetime",
            );
        }
        if !(1..=MAX_ACCOUNT_FAILURES).contains(&self.account_failures.max_failures) {
            return err("account_failures", "must be between 1 and 100");
        }
        if self.account_failures.window <= Duration::ZERO {
            return err("account_failure_window", "must be positive");
        }
        let rules = [
            ("codes_per_address", &self.codes_per_address),
            ("logins_per_client", &self.logins_per_client),
            ("registrations_per_client", &self.registrations_per_client),
            ("emails_per_client", &self.emails_per_client),
            ("verifications_per_client", &self.verifications_per_client),
        ];
        for (setting, rule) in rules {
            if rule.max == 0 || rule.window <= Duration::ZERO || rule.min_gap < Duration::ZERO {
                return err(
                    setting,
                    "needs a positive count and window and a gap of zero or more",
                );
            }
        }
        if self.key_pair_max_days == 0 {
            return err("key_pair_max_days", "must be at least 1");
        }
        let bad_name = |name: &String| {
            name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
        };
        if self.default_roles.iter().any(bad_name) {
            return err(
                "default_roles",
                "names must be ASCII letters, digits, '_', '-', '.' or ':'",
            );
        }
        if self.default_groups.iter().any(bad_name) {
            return err(
                "default_groups",
                "names must be ASCII letters, digits, '_', '-', '.' or ':'",
            );
        }
        Ok(())
    }
}
