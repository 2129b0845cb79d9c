//! Wiring of the credential cache: builds it from `[cache]` and starts the
//! thread that reads the revocation feed.

use std::sync::Arc;
use std::time::Duration;

use twauth_domain::Auth;
use twauth_domain::cache::{CacheSettings as Limits, CredentialCache, RevocationFollower};
use twauth_domain::ports::RevocationStore;

use crate::config::CacheSettings;

/// How long revocation rows are kept; far longer than any read looks back.
const KEEP_REVOCATIONS: time::Duration = time::Duration::minutes(1);

/// Polls between two purges of old revocation rows.
const POLLS_PER_PURGE: u32 = 300;

/// Gives `auth` a credential cache when `[cache]` enables it, and starts a
/// thread that applies revocations from `feed` to it until the process
/// exits. The feed is read once before this returns, so the thread's first
/// read already looks for revocations.
pub fn attach(auth: Auth, settings: &CacheSettings, feed: Arc<dyn RevocationStore>) -> Auth {
    if !settings.enabled {
        tracing::info!("credential cache disabled");
        return auth;
    }
    let cache = Arc::new(CredentialCache::new(Limits {
        capacity: settings.capacity,
        ttl: time::Duration::milliseconds(settings.ttl_ms as i64),
    }));
    let mut follower = RevocationFollower::new(feed, cache.clone());
    if let Err(err) = follower.poll() {
        tracing::warn!(error = %err, "failed to read the revocation feed; retrying in the background");
    }

    let interval = Duration::from_millis(settings.revocation_poll_ms.max(1));
    let spawned = std::thread::Builder::new()
        .name("twauth-revocations".to_owned())
        .spawn(move || follow(follower, interval));
    if let Err(err) = spawned {
        // Without the thread other processes' revocations would go unseen
        // until entries expire, so run without a cache instead.
        tracing::error!(error = %err, "failed to start the revocation thread; credential cache disabled");
        return auth;
    }
    tracing::info!(
        cache.capacity = settings.capacity,
        cache.ttl_ms = settings.ttl_ms,
        cache.revocation_poll_ms = settings.revocation_poll_ms,
        "credential cache enabled"
    );
    auth.with_cache(cache)
}

/// Reads the feed every `interval`, forever. A failed read has already
/// cleared the cache; it is logged once, and so is the recovery.
fn follow(mut follower: RevocationFollower, interval: Duration) {
    let mut failing = false;
    let mut polls: u32 = 0;
    loop {
        std::thread::sleep(interval);
        match follower.poll() {
            Ok(applied) => {
                if failing {
                    tracing::info!("revocation feed readable again");
                    failing = false;
                }
                if applied > 0 {
                    tracing::debug!(revocations = applied, "applied revocations from the feed");
                }
            }
            Err(err) => {
                if !failing {
                    tracing::warn!(error = %err, "failed to read the revocation feed; credential cache cleared until it recovers");
                    failing = true;
                }
                continue;
            }
        }

        polls = polls.wrapping_add(1);
        if polls.is_multiple_of(POLLS_PER_PURGE) {
            match follower.purge(KEEP_REVOCATIONS) {
                Ok(deleted) if deleted > 0 => {
                    tracing::debug!(revocations = deleted, "purged old revocations");
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "failed to purge old revocations"),
            }
        }
    }
}
