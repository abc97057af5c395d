// A plausible wrong solution of async/06: every message received from the room is written to
// the client. The room's broadcast channel delivers a line to every receiver, the sender's own
// included: each client now reads its own lines back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::broadcast::{self, error::RecvError};

/// A line said in a room: who said it (to skip their own), and the line as others see it.
#[derive(Debug, Clone)]
pub struct Said {
    pub from: u64,
    pub line: Arc<str>,
}

/// The rooms: one broadcast channel per room that has members.
#[derive(Default)]
pub struct Hub {
    rooms: Mutex<HashMap<String, broadcast::Sender<Said>>>,
}

impl Hub {
    /// The rooms that exist now, sorted.
    pub fn rooms(&self) -> Vec<String> {
        let rooms = self.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        let mut names: Vec<String> = rooms.keys().cloned().collect();
        names.sort();
        names
    }

    /// Subscribes to `room`, creating it if needed.
    pub fn join(&self, room: &str) -> broadcast::Receiver<Said> {
        let mut rooms = self.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        rooms
            .entry(room.to_string())
            .or_insert_with(|| broadcast::channel(64).0)
            .subscribe()
    }

    /// Drops `receiver`; removes `room` if that was its last member.
    pub fn leave(&self, room: &str, receiver: broadcast::Receiver<Said>) {
        // Under the lock: nobody can subscribe between the count and the removal.
        let mut rooms = self.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        drop(receiver);
        if rooms.get(room).is_some_and(|s| s.receiver_count() == 0) {
            rooms.remove(room);
        }
    }

    /// Sends `said` to the members of `room`.
    pub fn say(&self, room: &str, said: Said) {
        let rooms = self.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = rooms.get(room) {
            // An error means nobody is listening: nothing to deliver.
            let _ = sender.send(said);
        }
    }
}

/// One client's session: `lobby` first, `/join ROOM` to move, other lines to the room.
pub async fn session<S>(hub: Arc<Hub>, id: u64, name: String, stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (read, mut write) = tokio::io::split(stream);
    let mut lines = BufReader::new(read).lines();
    let mut room = String::from("lobby");
    let mut receiver = hub.join(&room);
    // Errors writing to the client end the session like a hang-up: the loop breaks.
    let mut ok = write.write_all(b"* joined lobby\n").await.is_ok();
    while ok {
        tokio::select! {
            line = lines.next_line() => {
                let Ok(Some(line)) = line else { break };
                if let Some(new_room) = line.strip_prefix("/join ") {
                    let new_room = new_room.trim().to_string();
                    // Join first, then leave: moving to the room one is in keeps it alive.
                    let old = std::mem::replace(&mut receiver, hub.join(&new_room));
                    hub.leave(&room, old);
                    room = new_room;
                    let reply = format!("* joined {room}\n");
                    ok = write.write_all(reply.as_bytes()).await.is_ok();
                } else {
                    let said = Said { from: id, line: format!("{name}: {line}").into() };
                    hub.say(&room, said);
                }
            }
            said = receiver.recv() => match said {
                Ok(said) => {
                    let out = format!("{}\n", said.line);
                    ok = write.write_all(out.as_bytes()).await.is_ok();
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {} // our own line, or missed lines: go on
                Err(RecvError::Closed) => break, // cannot happen while the hub holds the sender
            },
        }
    }
    hub.leave(&room, receiver);
}
