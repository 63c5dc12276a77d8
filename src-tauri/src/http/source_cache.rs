//! The receiver's memory of sources by token: a hook request finds its source here instead of
//! in the database (that lookup was two thirds of a request's handler time under load).
//!
//! It is never the last word: a delivery the writer journals before its answer carries the
//! revision of the source it was authenticated against, and the writer journals it only if the
//! source still has that revision (`store::writer`); an entry that turns out stale is forgotten
//! and the request is authenticated again from the database. A delivery acknowledged from the
//! receipt log has no such check, so an entry is trusted for [`TRUST_FOR`] at most: a source
//! changed by another process (the CLI beside a running app) holds within that time. It must
//! not answer anything on its own (URL probes read the database).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::facts::Platform;
use crate::store::sources::Source;

/// More active tokens than any organizer has; past it the cache starts again rather than grow
/// with tokens that were rotated away.
const MAX_ENTRIES: usize = 1024;
/// How long an entry is used before the source is read again: one lookup a second per active
/// source costs nothing under any load.
pub const TRUST_FOR: Duration = Duration::from_secs(1);

/// A source, and when it was read from the database.
type Entry = (Arc<Source>, Instant);

/// Entries are found by the token's hash under this cache's random keys (SipHash), so that the
/// lookup never compares a guessed token's bytes with a real one's, and a sender cannot choose
/// tokens whose hashes land near a real one's; the token itself is then compared in constant
/// time. The SHA-256 digest the database keeps gave the same, for 4,500 instructions a request
/// (without the CPU's SHA instructions) against a few hundred.
#[derive(Default)]
pub struct SourceCache {
    keys: RandomState,
    by_hash: RwLock<HashMap<u64, Entry>>,
}

impl SourceCache {
    /// The source remembered for `token` on `platform`.
    pub fn get(&self, platform: Platform, token: &str) -> Option<Arc<Source>> {
        let hash = self.keys.hash_one(token);
        let entries = self.by_hash.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&hash)
            .filter(|(source, read)| {
                read.elapsed() < TRUST_FOR && source.platform == platform && source.has_token(token)
            })
            .map(|(source, _)| source.clone())
    }

    pub fn remember(&self, source: Arc<Source>) {
        let hash = self.keys.hash_one(&source.token);
        let mut entries = self.by_hash.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(hash, (source, Instant::now()));
    }

    pub fn forget(&self, token: &str) {
        let hash = self.keys.hash_one(token);
        let mut entries = self.by_hash.write().unwrap_or_else(|e| e.into_inner());
        entries.remove(&hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(token: &str, platform: Platform) -> Arc<Source> {
        Arc::new(Source {
            id: 1,
            platform,
            label: "a".into(),
            token: token.into(),
            time_zone: "UTC".into(),
            created_at: String::new(),
            secret_keys: Vec::new(),
            revision: 0,
        })
    }

    #[test]
    fn a_source_is_found_by_its_token_and_platform_only() {
        let cache = SourceCache::default();
        cache.remember(source("tok-1", Platform::Tagmango));
        assert!(cache.get(Platform::Tagmango, "tok-1").is_some());
        assert!(cache.get(Platform::Bigmarker, "tok-1").is_none());
        assert!(cache.get(Platform::Tagmango, "tok-2").is_none());
        cache.forget("tok-1");
        assert!(cache.get(Platform::Tagmango, "tok-1").is_none());
    }

    #[test]
    fn the_cache_starts_again_when_full() {
        let cache = SourceCache::default();
        for n in 0..MAX_ENTRIES {
            cache.remember(source(&format!("tok-{n}"), Platform::Tagmango));
        }
        cache.remember(source("last", Platform::Tagmango));
        assert!(cache.get(Platform::Tagmango, "last").is_some());
        assert!(cache.get(Platform::Tagmango, "tok-0").is_none());
    }
}
