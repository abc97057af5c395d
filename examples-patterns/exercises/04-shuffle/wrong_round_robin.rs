// A plausible wrong solution of patterns/04: the mapper deals its words out to the reducers in
// turn, for a perfect balance. But the k-th word of one mapper is not the k-th word of another:
// the same word reaches several reducers, and its count is split between shards. Each shard's
// sum is right, so a check of the grand total passes.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::mpsc;

/// The reducer that owns `word`: the same answer from every thread, every time.
pub fn shard_of(word: &str, shards: usize) -> usize {
    // `DefaultHasher::new()` uses fixed keys (unlike `RandomState`): the same word gets the same
    // hash in every mapper. Within one program version, which is all a shuffle needs.
    let mut h = DefaultHasher::new();
    word.hash(&mut h);
    (h.finish() % shards.max(1) as u64) as usize
}

/// Counts the words of `chunks` (a mapper thread each) into `shards` maps (a reducer thread
/// each): every word in exactly one map, with its total count.
pub fn shuffle_count(chunks: &[&str], shards: usize) -> Vec<HashMap<String, u64>> {
    let shards = shards.max(1);
    std::thread::scope(|s| {
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..shards)
            .map(|_| mpsc::channel::<HashMap<String, u64>>())
            .unzip();
        let reducers: Vec<_> = receivers
            .into_iter()
            .map(|rx| {
                s.spawn(move || {
                    let mut shard: HashMap<String, u64> = HashMap::new();
                    // Ends when every mapper has dropped its Sender for this shard.
                    for partial in rx {
                        for (word, n) in partial {
                            *shard.entry(word).or_default() += n;
                        }
                    }
                    shard
                })
            })
            .collect();
        for chunk in chunks {
            let senders = senders.clone();
            s.spawn(move || {
                // Count first, then deal the words out to the reducers in turn: every reducer
                // gets the same number of words, the load is balanced.
                let mut counts: HashMap<String, u64> = HashMap::new();
                for word in chunk.split_whitespace() {
                    *counts.entry(word.to_string()).or_default() += 1;
                }
                let mut partials: Vec<HashMap<String, u64>> = vec![HashMap::new(); shards];
                for (i, (word, n)) in counts.into_iter().enumerate() {
                    partials[i % shards].insert(word, n);
                }
                for (partial, tx) in partials.into_iter().zip(&senders) {
                    let _ = tx.send(partial); // a reducer only goes away if it panicked
                }
            });
        }
        drop(senders); // ours: the reducers end once the mappers' clones are gone too
        reducers
            .into_iter()
            .map(|r| r.join().expect("a reducer panicked"))
            .collect()
    })
}
