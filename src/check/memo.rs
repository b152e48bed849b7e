//! The memo of the linearizability search: the set of visited (linearized set, register
//! state) configurations, as Porcupine keeps it.
//!
//! Where it sits: inside [`super::wgl`], one per key being searched. The linearized set is a
//! bitset over the key's operations; its hash is maintained incrementally by the search
//! (Zobrist hashing: XOR of one random word per operation), so a lookup costs one hash probe
//! and, on a hit, one bitset comparison. Bitsets live back to back in one arena (`Vec<u64>`),
//! so an entry costs `8 * ceil(n / 64)` bytes of arena plus 24 bytes of table, with no
//! allocation per entry. Memory is taken in 256 KiB chunks from a budget shared by all keys
//! being checked ([`MemoBudget`], `--max-memory-mib`); when it runs out the search stops
//! with "unknown" instead of exhausting the machine. A key's memo is freed (and its chunks
//! returned) as soon as its search ends.

use std::sync::atomic::{AtomicUsize, Ordering};

use hashbrown::HashTable;

/// Bytes the memo sets of one whole check may hold together.
#[derive(Debug)]
pub(crate) struct MemoBudget {
    limit: usize,
    used: AtomicUsize,
    peak: AtomicUsize,
}

impl MemoBudget {
    pub(crate) fn new(limit: usize) -> MemoBudget {
        MemoBudget {
            limit,
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// Charges `bytes`, or nothing and false when that would pass the limit.
    fn charge(&self, bytes: usize) -> bool {
        let now = self.used.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if now > self.limit {
            self.used.fetch_sub(bytes, Ordering::Relaxed);
            return false;
        }
        self.peak.fetch_max(now, Ordering::Relaxed);
        true
    }

    fn refund(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Bytes held now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The most bytes held at once so far.
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}

/// What inserting a configuration found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Insert {
    /// New: the search goes on from it.
    New,
    /// Already visited (and so already known to fail).
    Seen,
    /// The memory budget is exhausted.
    OutOfBudget,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    hash: u64,
    offset: usize,
    state: u32,
}

const ENTRY_BYTES: usize = std::mem::size_of::<Entry>() + 1;

/// Visited configurations of one key's search.
#[derive(Debug)]
pub(crate) struct Memo<'b> {
    words: usize,
    arena: Vec<u64>,
    table: HashTable<Entry>,
    budget: &'b MemoBudget,
    /// Bytes taken from the budget (in chunks, so threads rarely touch the shared counter).
    reserved: usize,
    /// Bytes used of them.
    charged: usize,
}

/// Bytes a memo takes from the shared budget at a time.
const CHUNK: usize = 256 << 10;

impl<'b> Memo<'b> {
    /// A memo for bitsets of `words` 64-bit words.
    pub(crate) fn new(words: usize, budget: &'b MemoBudget) -> Memo<'b> {
        Memo {
            words,
            arena: Vec::new(),
            table: HashTable::new(),
            budget,
            reserved: 0,
            charged: 0,
        }
    }

    /// Number of configurations held.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Inserts `(bits, state)` whose combined hash is `hash`, unless already there.
    pub(crate) fn insert(&mut self, hash: u64, bits: &[u64], state: u32) -> Insert {
        let arena = &self.arena;
        let words = self.words;
        let found = self.table.find(hash, |e| {
            e.hash == hash
                && e.state == state
                && arena.get(e.offset..e.offset + words) == Some(bits)
        });
        if found.is_some() {
            return Insert::Seen;
        }
        let bytes = self.words * 8 + ENTRY_BYTES;
        if self.charged + bytes > self.reserved {
            let chunk = CHUNK.max(bytes);
            if !self.budget.charge(chunk) {
                return Insert::OutOfBudget;
            }
            self.reserved += chunk;
        }
        self.charged += bytes;
        let offset = self.arena.len();
        self.arena.extend_from_slice(bits);
        self.table.insert_unique(
            hash,
            Entry {
                hash,
                offset,
                state,
            },
            |e| e.hash,
        );
        Insert::New
    }
}

impl Drop for Memo<'_> {
    fn drop(&mut self) {
        self.budget.refund(self.reserved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinguishes_bits_and_state_even_with_equal_hashes() {
        let budget = MemoBudget::new(1 << 20);
        let mut memo = Memo::new(2, &budget);
        assert_eq!(memo.insert(7, &[1, 0], 0), Insert::New);
        assert_eq!(memo.insert(7, &[1, 0], 0), Insert::Seen);
        assert_eq!(memo.insert(7, &[1, 0], 1), Insert::New);
        assert_eq!(memo.insert(7, &[0, 1], 0), Insert::New);
        assert_eq!(memo.len(), 3);
        assert!(budget.used() > 0);
        drop(memo);
        assert_eq!(budget.used(), 0, "dropping a memo returns its bytes");
    }

    #[test]
    fn refuses_past_the_budget() {
        // Entries of 1 KiB of bitset: a 256 KiB chunk holds about 250 of them.
        let words = 128;
        let per_entry = words * 8 + ENTRY_BYTES;
        let budget = MemoBudget::new(CHUNK);
        let mut memo = Memo::new(words, &budget);
        let mut bits = vec![0u64; words];
        let mut inserted = 0;
        for i in 0..1000u64 {
            bits[0] = i;
            match memo.insert(i, &bits, 0) {
                Insert::New => inserted += 1,
                Insert::OutOfBudget => break,
                Insert::Seen => panic!("distinct entries"),
            }
        }
        assert_eq!(inserted, CHUNK / per_entry);
        bits[0] = 0;
        assert_eq!(memo.insert(0, &bits, 0), Insert::Seen, "lookups still work");
        assert!(budget.peak() <= CHUNK);
    }
}
