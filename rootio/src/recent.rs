//! A few values kept across the files of a run, the last used first.

use std::sync::Mutex;

/// Up to `keep` entries, found by a predicate on their key; a hit moves to the front and the
/// entry used least recently falls out when a new one comes in. Shared between threads (a
/// `static`), so a poisoned lock is taken over: the list holds only finished entries.
pub(crate) struct Recent<K, V> {
    keep: usize,
    entries: Mutex<Vec<(K, V)>>,
}

impl<K, V: Clone> Recent<K, V> {
    /// An empty list that keeps at most `keep` entries.
    pub(crate) const fn new(keep: usize) -> Self {
        Recent {
            keep,
            entries: Mutex::new(Vec::new()),
        }
    }

    /// The value of the first entry whose key matches, which becomes the first.
    pub(crate) fn find(&self, matches: impl Fn(&K) -> bool) -> Option<V> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let i = entries.iter().position(|(k, _)| matches(k))?;
        let hit = entries.remove(i);
        let value = hit.1.clone();
        entries.insert(0, hit);
        Some(value)
    }

    /// Puts an entry first, dropping the last one when full.
    pub(crate) fn put(&self, key: K, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.insert(0, (key, value));
        entries.truncate(self.keep);
    }
}

#[cfg(test)]
mod tests {
    use super::Recent;

    #[test]
    fn keeps_the_last_used() {
        let r: Recent<u32, &str> = Recent::new(2);
        r.put(1, "a");
        r.put(2, "b");
        // A hit moves 1 to the front, so 2 is the one that falls out.
        assert_eq!(r.find(|k| *k == 1), Some("a"));
        r.put(3, "c");
        assert_eq!(r.find(|k| *k == 2), None);
        assert_eq!(r.find(|k| *k == 1), Some("a"));
        assert_eq!(r.find(|k| *k == 3), Some("c"));
    }
}
