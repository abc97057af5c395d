// A plausible wrong solution of patterns/04: the routing is right, but the reducer stores each
// partial count with `insert`, which replaces the count a previous mapper sent for the same
// word instead of adding to it. With one chunk, or words that appear in one chunk only, it is
// right.

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
                            shard.insert(word, n);
                        }
                    }
                    shard
                })
            })
            .collect();
        for chunk in chunks {
            let senders = senders.clone();
            s.spawn(move || {
                let mut partials: Vec<HashMap<String, u64>> = vec![HashMap::new(); shards];
                for word in chunk.split_whitespace() {
                    *partials[shard_of(word, shards)]
                        .entry(word.to_string())
                        .or_default() += 1;
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
