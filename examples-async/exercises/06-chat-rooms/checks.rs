// Checks of async/06, compiled against the learner's file, the solution and each wrong one.

use shared::exercise::{Check, Failure, Jitter, Progress, ensure, panic_failure, stress, watchdog};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{
    AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines, ReadHalf, WriteHalf,
};

const ROOMS: [&str; 4] = ["lobby", "rust", "python", "go"];

/// The test's end of one client's in-memory connection.
struct Client {
    id: u64,
    room: String,
    lines: Lines<BufReader<ReadHalf<DuplexStream>>>,
    write: WriteHalf<DuplexStream>,
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| Failure::property("runs", format!("cannot build a runtime: {e}")))
}

fn broken(e: impl std::fmt::Display) -> Failure {
    Failure::property("the session keeps its connection open", format!("{e}"))
}

/// The next line from the session, waiting up to a (virtual) second.
async fn next_line(c: &mut Client) -> Result<Option<String>, Failure> {
    match tokio::time::timeout(Duration::from_secs(1), c.lines.next_line()).await {
        Ok(line) => line.map_err(broken),
        Err(_) => Ok(None),
    }
}

/// Every line already delivered to `c` (nothing more arrives within a virtual millisecond).
async fn pending(c: &mut Client) -> Result<Vec<String>, Failure> {
    let mut out = Vec::new();
    while let Ok(line) = tokio::time::timeout(Duration::from_millis(1), c.lines.next_line()).await {
        match line.map_err(broken)? {
            Some(line) => out.push(line),
            None => break,
        }
    }
    Ok(out)
}

type Sessions = Vec<tokio::task::JoinHandle<()>>;

async fn connect(hub: &Arc<Hub>, id: u64, sessions: &mut Sessions) -> Result<Client, Failure> {
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    sessions.push(tokio::spawn(session(
        Arc::clone(hub),
        id,
        format!("c{id}"),
        theirs,
    )));
    let (read, write) = tokio::io::split(ours);
    let mut c = Client {
        id,
        room: "lobby".into(),
        lines: BufReader::new(read).lines(),
        write,
    };
    let first = next_line(&mut c).await?;
    ensure(
        first.as_deref() == Some("* joined lobby"),
        "a session starts in `lobby` and says `* joined lobby`",
        || format!("c{id}'s first line was {first:?}"),
    )?;
    Ok(c)
}

async fn join(c: &mut Client, room: &str) -> Check {
    c.write
        .write_all(format!("/join {room}\n").as_bytes())
        .await
        .map_err(broken)?;
    let reply = next_line(c).await?;
    ensure(
        reply.as_deref() == Some(&format!("* joined {room}")),
        "`/join ROOM` moves the client and answers `* joined ROOM`",
        || format!("c{} sent `/join {room}` and read {reply:?}", c.id),
    )?;
    c.room = room.to_string();
    Ok(())
}

/// Client `k` says a line; every client must get exactly what its room should give it.
async fn say(clients: &mut [Option<Client>], k: usize, text: &str) -> Check {
    let (speaker, room) = match &mut clients[k] {
        Some(c) => {
            c.write
                .write_all(format!("{text}\n").as_bytes())
                .await
                .map_err(broken)?;
            (c.id, c.room.clone())
        }
        None => return Ok(()),
    };
    tokio::time::sleep(Duration::from_millis(5)).await; // every session has had its turn
    for c in clients.iter_mut().flatten() {
        let got = pending(c).await?;
        let expected: Vec<String> = if c.id != speaker && c.room == room {
            vec![format!("c{speaker}: {text}")]
        } else {
            Vec::new()
        };
        ensure(
            got == expected,
            "a line reaches every other member of the room, and nobody else",
            || {
                format!(
                    "c{speaker} (in {room}) said {text:?}; c{} (in {}) received {got:?}, \
                     expected {expected:?}",
                    c.id, c.room
                )
            },
        )?;
    }
    Ok(())
}

fn rooms_match(hub: &Hub, clients: &[Option<Client>], after: &str) -> Check {
    let expected: Vec<String> = clients
        .iter()
        .flatten()
        .map(|c| c.room.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let rooms = hub.rooms();
    ensure(
        rooms == expected,
        "`rooms()` lists exactly the rooms that have members",
        || format!("after {after}: rooms() = {rooms:?}, the clients are in {expected:?}"),
    )
}

/// A failed check may come from a session that panicked (a `todo!()` not written yet): say so.
async fn conversation(seed: u64, progress: &Progress) -> Check {
    let mut sessions = Sessions::new();
    let result = steps(seed, progress, &mut sessions).await;
    if result.is_err() {
        for handle in sessions {
            if handle.is_finished()
                && let Err(e) = handle.await
                && e.is_panic()
            {
                return Err(panic_failure(e.into_panic().as_ref()));
            }
        }
    }
    result
}

async fn steps(seed: u64, progress: &Progress, sessions: &mut Sessions) -> Check {
    let mut draw = Jitter::new(seed, 0);
    let hub = Arc::new(Hub::default());
    let n = 3 + draw.below(4) as usize;
    let mut clients = Vec::new();
    for id in 0..n as u64 {
        clients.push(Some(connect(&hub, id, sessions).await?));
    }
    rooms_match(&hub, &clients, "everyone connected")?;
    // A fixed opening: two rooms with members, then one emptied again.
    if let Some(c) = &mut clients[0] {
        join(c, "rust").await?;
    }
    rooms_match(&hub, &clients, "c0 moved to rust")?;
    say(&mut clients, 1, "hello lobby").await?;
    say(&mut clients, 0, "hello rust").await?;
    if let Some(c) = &mut clients[0] {
        join(c, "lobby").await?;
    }
    rooms_match(
        &hub,
        &clients,
        "c0 moved back to the lobby, leaving rust empty",
    )?;
    progress.tick();
    for step in 0..25 {
        let k = draw.below(n as u64) as usize;
        let what = match draw.below(10) {
            0..=3 => {
                let room = ROOMS[draw.below(4) as usize];
                if let Some(c) = &mut clients[k] {
                    join(c, room).await?;
                }
                format!("c{k} sent `/join {room}`")
            }
            4..=8 => {
                say(&mut clients, k, &format!("line {step}")).await?;
                format!("c{k} said a line")
            }
            _ => {
                if clients.iter().flatten().count() > 2 {
                    clients[k] = None; // hangs up: the session reads end of file
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                format!("c{k} hung up")
            }
        };
        rooms_match(&hub, &clients, &what)?;
        progress.tick();
    }
    Ok(())
}

pub fn all() -> Check {
    watchdog("chat-rooms", Duration::from_secs(10), |progress| {
        stress(20, |seed| runtime()?.block_on(conversation(seed, progress)))
    })
}
