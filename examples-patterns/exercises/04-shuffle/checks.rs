// Checks of patterns/04, compiled against the learner's file, the solution and each wrong one.

use shared::exercise::{Check, Jitter, Progress, ensure, stress, watchdog};
use std::collections::HashMap;
use std::time::Duration;

/// A text of `words` words drawn from a vocabulary of `vocabulary`, seeded.
fn text(j: &mut Jitter, words: u64, vocabulary: u64) -> String {
    (0..words)
        .map(|_| format!("w{}", j.below(vocabulary)))
        .collect::<Vec<_>>()
        .join(if j.below(2) == 0 { " " } else { "\n" })
}

fn one_run(seed: u64, progress: &Progress) -> Check {
    let mut j = Jitter::new(seed, 0);
    let (chunks_n, shards) = (2 + j.below(7) as usize, 2 + j.below(7) as usize);
    let texts: Vec<String> = (0..chunks_n)
        .map(|_| {
            let words = 200 + j.below(300);
            text(&mut j, words, 150)
        })
        .collect();
    let chunks: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut expected: HashMap<String, u64> = HashMap::new();
    for w in chunks.iter().flat_map(|c| c.split_whitespace()) {
        *expected.entry(w.to_string()).or_default() += 1;
    }
    let got = shuffle_count(&chunks, shards);
    progress.tick();
    let setup = format!("{chunks_n} chunks, {shards} shards");
    ensure(got.len() == shards, "one map per shard", || {
        format!("{setup}: {} maps", got.len())
    })?;
    let mut owner: HashMap<&str, usize> = HashMap::new();
    for (i, shard) in got.iter().enumerate() {
        for word in shard.keys() {
            if let Some(first) = owner.insert(word.as_str(), i) {
                return ensure(false, "every word in exactly one shard", || {
                    format!(
                        "{setup}: {word:?} is in shard {first} and in shard {i}: two reducers \
                         received it, so different mappers routed it differently"
                    )
                });
            }
        }
    }
    for (word, &i) in &owner {
        ensure(
            shard_of(word, shards) == i,
            "a word sits in the shard `shard_of` names",
            || {
                format!(
                    "{setup}: {word:?} is in shard {i}, shard_of says {}",
                    shard_of(word, shards)
                )
            },
        )?;
    }
    let mut merged: HashMap<String, u64> = HashMap::new();
    for shard in &got {
        merged.extend(shard.iter().map(|(w, n)| (w.clone(), *n)));
    }
    if let Some((word, n)) = expected.iter().find(|(w, n)| merged.get(*w) != Some(n)) {
        return ensure(false, "the counts equal a sequential count", || {
            format!(
                "{setup}: {word:?} counted {:?}, expected {n}",
                merged.get(word)
            )
        });
    }
    ensure(merged.len() == expected.len(), "no word invented", || {
        format!(
            "{setup}: {} words, expected {}",
            merged.len(),
            expected.len()
        )
    })?;
    let empty = got.iter().filter(|s| s.is_empty()).count();
    ensure(empty == 0, "the shards share the work", || {
        format!(
            "{setup}: {empty} shards are empty for {} distinct words",
            expected.len()
        )
    })
}

pub fn all() -> Check {
    watchdog("shuffle", Duration::from_secs(5), |progress| {
        ensure(
            (0..5).all(|_| shard_of("consistent", 7) == shard_of("consistent", 7)),
            "shard_of is a function of the word",
            || "shard_of(\"consistent\", 7) changed from one call to the next".into(),
        )?;
        stress(60, |seed| one_run(seed, progress))
    })
}
