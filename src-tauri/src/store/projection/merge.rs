//! Order-independent merge rules: the building blocks every projected entity folds facts with.
//!
//! A fact carries a [`Version`] (when the platform says the event happened, else when it was
//! received; then the delivery's identity and the fact's position in it). Fields take the value
//! of the highest-version fact that has one ([`Lww`]), or the earliest or latest instant
//! ([`keep_min`], [`keep_max`]). Each rule is commutative, so arrival order, retries and
//! replays cannot change the result, and `reindex` reproduces the tables exactly.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The order of facts: observed time in milliseconds, a stable hash of the delivery identity,
/// and the fact's ordinal within its delivery.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct Version(pub i64, pub u64, pub u32);

impl Version {
    /// The version of a delivery's first fact; [`Version::of_fact`] gives the others. The
    /// identity's digest is the same for every fact of a delivery (50,000 of them in a
    /// BigMarker attendee list), so it is computed once.
    pub fn new(observed_at: DateTime<Utc>, identity: &str) -> Self {
        let digest = Sha256::digest(identity.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Version(observed_at.timestamp_millis(), u64::from_be_bytes(first), 0)
    }

    /// The version of the delivery's fact at `ordinal`.
    pub fn of_fact(self, ordinal: u32) -> Self {
        Version(self.0, self.1, ordinal)
    }
}

/// Last writer wins, per field: the value of the highest-version fact that carried one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lww<T> {
    #[serde(rename = "v")]
    pub value: Option<T>,
    #[serde(rename = "at", default)]
    pub version: Version,
}

impl<T> Default for Lww<T> {
    fn default() -> Self {
        Self {
            value: None,
            version: Version::default(),
        }
    }
}

impl<T: Clone> Lww<T> {
    pub fn offer(&mut self, value: Option<&T>, version: Version) {
        if let Some(value) = value {
            if self.value.is_none() || version > self.version {
                self.value = Some(value.clone());
                self.version = version;
            }
        }
    }

    pub fn get(&self) -> Option<&T> {
        self.value.as_ref()
    }
}

impl<T> Lww<T> {
    /// No fact has offered a value: what a fold leaves out when it is stored.
    pub fn is_unset(&self) -> bool {
        self.value.is_none()
    }
}

impl<T: Clone> Lww<Vec<T>> {
    /// An empty list says nothing, so it never replaces a list.
    pub fn offer_list(&mut self, list: &[T], version: Version) {
        if !list.is_empty() {
            self.offer(Some(&list.to_vec()), version);
        }
    }
}

/// Keeps the candidate with the smallest key.
pub fn keep_min<T: Clone, K: Ord>(
    slot: &mut Option<T>,
    candidate: Option<&T>,
    key: impl Fn(&T) -> K,
) {
    if let Some(candidate) = candidate {
        if slot
            .as_ref()
            .is_none_or(|current| key(candidate) < key(current))
        {
            *slot = Some(candidate.clone());
        }
    }
}

/// Keeps the candidate with the largest key.
pub fn keep_max<T: Clone, K: Ord>(
    slot: &mut Option<T>,
    candidate: Option<&T>,
    key: impl Fn(&T) -> K,
) {
    if let Some(candidate) = candidate {
        if slot
            .as_ref()
            .is_none_or(|current| key(candidate) > key(current))
        {
            *slot = Some(candidate.clone());
        }
    }
}

/// The newest contributing delivery: where a row "came from".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Newest {
    pub version: Version,
    pub delivery_id: i64,
}

impl Newest {
    pub fn offer(&mut self, version: Version, delivery_id: i64) {
        if self.delivery_id == 0 || version > self.version {
            *self = Newest {
                version,
                delivery_id,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lww_takes_the_newest_value_in_any_order() {
        let (a, b, c) = (Version(1, 0, 0), Version(2, 0, 0), Version(3, 0, 0));
        let offers = [(Some(1), a), (Some(2), b), (None, c)];
        for order in [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ] {
            let mut field = Lww::default();
            for i in order {
                field.offer(offers[i].0.as_ref(), offers[i].1);
            }
            assert_eq!(field.get(), Some(&2), "order {order:?}");
        }
    }

    #[test]
    fn extremes_keep_the_smallest_and_largest() {
        let (mut low, mut high) = (None, None);
        for n in [5, 3, 9] {
            keep_min(&mut low, Some(&n), |n| *n);
            keep_max(&mut high, Some(&n), |n| *n);
        }
        assert_eq!((low, high), (Some(3), Some(9)));
    }
}
