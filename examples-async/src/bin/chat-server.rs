//! A chat room for 10,000 clients, in a terminal (TCP lines, `nc`) and in a browser (WebSocket):
//! one task per client, one broadcast ring, and every limit a public server needs.
//!
//! Course section **8.2 — Programmation asynchrone avec asyncio** ("serveur chat gérant 10000
//! connexions simultanées", WebSockets, real-time applications): `asyncio.start_server` and a set
//! of writers, the same shape in tokio.
//!
//! Crates: `tokio = { version = "1.54", features = ["rt-multi-thread", "macros", "net", "io-util", "sync", "time"] }`,
//! `tokio-util = { version = "0.7", features = ["codec", "rt"] }`, `bytes = "1"`, `futures = "0.3"`,
//! `hyper = { version = "1", features = ["server", "http1"] }`, `hyper-util = { version = "0.1", features = ["tokio"] }`,
//! `http-body-util = "0.1"`, `tracing = "0.1"`,
//! `tokio-tungstenite = { version = "0.29", default-features = false, features = ["handshake"] }`
//!
//! # Protocol: one line is one message (`nc` is a complete client; so is the page at `/`)
//! - `* welcome guest7! 3 online; /help for commands`, then each line reaches every other client
//!   as `guest7: text`. `/nick NAME` (1–32 of `A-Za-z0-9_-`, unique ignoring case; `guestN` is
//!   the server's), `/list`, `/help`, `/quit`. Notices start with `* `, errors with `error: `.
//! - Limits, the same on both transports: `--max-line` bytes per line, its `\n` or `\r\n` not
//!   counted (exactly `--max-line` passes however TCP splits it); longer closes (WebSocket 1009).
//!   Invalid UTF-8 becomes `�` (a WebSocket text frame must be UTF-8: 1007); control and bidi
//!   characters become `?`; binary frames get an `error:` line; a client that stops reading is
//!   dropped; `--max-clients` in all; `--idle-timeout`.
//! - The page and `/ws` listen on `--http-addr`, not on the chat port: a line client speaks second
//!   (it waits for its welcome), an HTTP client first, so sniffing one port would make every `nc`
//!   wait out a timeout for its welcome, and would misread a first line typed as `GET /`.
//!
//! # Concepts
//! - **One task per connection** `select!`s over its input, the room's broadcast, an idle timer and
//!   shutdown: about 2 KiB per idle TCP client (reader + writer task + mpsc each: 3–7× more).
//! - **One `broadcast` ring of pre-formatted `Bytes`** is every client's bounded queue: fall
//!   `--queue` lines behind, or block a write for `--write-timeout`, and you are dropped.
//! - **One session, two transports**: `session()` holds every rule once; a `Transport` moves lines
//!   (a line codec on TCP, text messages on WebSocket).
//! - **WebSocket buffers sized on purpose**: tungstenite allocates its read buffer up front, 128 KiB
//!   by default (1.3 GB at 10,000 clients); here 1 KiB. Its write buffer exists only while frames
//!   wait: written out past 4 KiB, capped at 64 KiB (plus a line) for a client that stops reading.
//!   In all about 5 KiB per idle WebSocket client: 3 KiB more than a TCP one.
//! - **Storms coalesced**: joins and leaves go out every `--notice-interval` as one line each.
//! - **Shutdown is a parameter** of `serve`: SIGINT or SIGTERM; TCP clients get a goodbye line,
//!   browsers close code 1001; a `TaskTracker` waits for every client task (bounded).
//! - **Tracing**: a span per connection (protocol, peer, nick): `RUST_LOG=chat_server=debug`.
//!
//! # Run
//! ```text
//! cargo run --release -p examples-async --bin chat-server     # chat 127.0.0.1:6142, page :6143
//! nc 127.0.0.1 6142                                           # and http://127.0.0.1:6143/ in a browser
//! RUST_LOG=chat_server=debug cargo run -p examples-async --bin chat-server -- --duration 60s
//! target/release/chat-load --clients 5000 --ws 5000 --addr 127.0.0.1:6142 --server-pid $(pgrep -n chat-server)
//! ```
//!
//! # What to observe
//! - A line typed in `nc` appears in the browser and the other way round: one room.
//! - Stop `nc` with Ctrl-Z and flood from another client: it is dropped, nobody else notices.
//! - Stop the server: `nc` prints the goodbye, the page says so and reconnects once it is back.
//!
//! # Exercises
//! 1. Rooms, `/join ROOM` (who removes an empty room?): `cargo run -p shared --bin exercises -- check async/06`
//! 2. A token bucket per client (20 lines/s, burst 50; checked: `… check async/04`): show with
//!    `chat-load` that one flooder no longer pushes healthy clients towards the `--queue` limit.
//! 3. Raise the WebSocket read buffer to 128 KiB and measure `chat-load --ws 10000 --server-pid`.

// === Lesson: copy from here ===

/// Bytes to lines, with a hard length limit. `LinesCodec` would do, but it rejects invalid UTF-8
/// and, past its limit, silently discards until the next newline; a chat server wants to tell
/// the client and hang up, and to decide itself what to do with bad bytes.
mod line_codec {
    use bytes::BytesMut;
    use tokio_util::codec::Decoder;

    pub struct LineCodec {
        max: usize,
        /// Where to resume the newline search: bytes before it were already scanned.
        scanned: usize,
    }

    #[derive(Debug, PartialEq, Eq)]
    pub enum LineError {
        /// Longer than the limit (the terminator does not count).
        TooLong,
        /// A reset or another socket error: the connection is gone, the details do not matter.
        Io,
    }

    impl From<std::io::Error> for LineError {
        fn from(_: std::io::Error) -> Self {
            LineError::Io
        }
    }

    impl LineCodec {
        pub fn new(max: usize) -> Self {
            LineCodec { max, scanned: 0 }
        }
    }

    /// Strips one trailing `\r` (telnet and browsers' forms send CRLF).
    fn strip_cr(line: &mut BytesMut) {
        if line.last() == Some(&b'\r') {
            line.truncate(line.len() - 1);
        }
    }

    impl Decoder for LineCodec {
        type Item = BytesMut;
        type Error = LineError;

        fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, LineError> {
            let start = self.scanned.min(buf.len());
            match buf[start..].iter().position(|&b| b == b'\n') {
                Some(pos) => {
                    self.scanned = 0;
                    let mut line = buf.split_to(start + pos + 1);
                    line.truncate(line.len() - 1);
                    strip_cr(&mut line);
                    if line.len() > self.max {
                        Err(LineError::TooLong)
                    } else {
                        Ok(Some(line))
                    }
                }
                None => {
                    // No newline yet. Fail now if the line is already too long, before the
                    // buffer grows further, but not because of a `\r` whose `\n` is still in
                    // flight: the limit counts content, so a line of exactly `max` bytes passes
                    // whether TCP delivers `…\r\n` in one piece or as `…\r` then `\n`.
                    let content = buf.len() - usize::from(buf.last() == Some(&b'\r'));
                    if content > self.max {
                        return Err(LineError::TooLong);
                    }
                    self.scanned = buf.len();
                    Ok(None)
                }
            }
        }

        fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, LineError> {
            match self.decode(buf)? {
                Some(line) => Ok(Some(line)),
                // `printf hi | nc` sends a last line without a newline: keep it.
                None if !buf.is_empty() => {
                    self.scanned = 0;
                    let mut line = buf.split();
                    strip_cr(&mut line);
                    Ok(Some(line))
                }
                None => Ok(None),
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn splits_lines_and_enforces_the_limit() {
            let mut codec = LineCodec::new(5);
            let mut buf = BytesMut::from(&b"hi\r\nhello\nab"[..]);
            assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), &b"hi"[..]);
            assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), &b"hello"[..]);
            assert!(codec.decode(&mut buf).unwrap().is_none());
            assert_eq!(codec.decode_eof(&mut buf).unwrap().unwrap(), &b"ab"[..]);
            let mut long = BytesMut::from(&b"abcdefgh"[..]);
            assert_eq!(codec.decode(&mut long), Err(LineError::TooLong));
        }

        #[test]
        fn a_line_of_exactly_max_bytes_passes_however_crlf_is_split() {
            // Before the fix, `hello\r` (6 bytes, no `\n` yet) was "too long" for a limit of 5.
            for split in 0..7 {
                let mut codec = LineCodec::new(5);
                let whole = b"hello\r\n";
                let mut buf = BytesMut::from(&whole[..split]);
                assert_eq!(codec.decode(&mut buf), Ok(None), "split at {split}");
                buf.extend_from_slice(&whole[split..]);
                assert_eq!(
                    codec.decode(&mut buf).unwrap().as_deref(),
                    Some(&b"hello"[..]),
                    "split at {split}"
                );
            }
            let mut codec = LineCodec::new(5);
            let mut buf = BytesMut::from(&b"hello!\r"[..]);
            assert_eq!(codec.decode(&mut buf), Err(LineError::TooLong));
        }
    }
}

/// Who is called what. Nicknames are unique ignoring ASCII case (`alice` and `ALICE` are one
/// name), `guest` + digits belongs to the server (so `/nick guest7` cannot collide with the
/// seventh client), and a name is released only by the client that holds it.
mod names {
    use std::collections::HashMap;

    #[derive(Debug, PartialEq, Eq)]
    pub enum NickError {
        Invalid,
        Reserved,
        Taken,
    }

    impl NickError {
        pub fn message(&self, name: &str) -> String {
            match self {
                NickError::Invalid => "error: a nick is 1-32 characters of A-Z a-z 0-9 _ -".into(),
                NickError::Reserved => format!("error: {name} is reserved for guests"),
                NickError::Taken => format!("error: nick {name} is taken"),
            }
        }
    }

    /// Names in use: the case-folded name → (owner's client id, name as written).
    #[derive(Default)]
    pub struct Nicks {
        by_key: HashMap<String, (u64, String)>,
    }

    pub fn valid_nick(s: &str) -> bool {
        (1..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }

    fn is_guest_name(key: &str) -> bool {
        key.strip_prefix("guest")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    }

    impl Nicks {
        /// Registers and returns client `id`'s guest name. It cannot be taken: ids are unique
        /// and nobody else may pick a `guestN` name.
        pub fn guest(&mut self, id: u64) -> String {
            let name = format!("guest{id}");
            self.by_key.insert(name.clone(), (id, name.clone()));
            name
        }

        /// Renames client `id` from `old` to `new`, atomically: two clients asking for the same
        /// name at once are serialised by the caller's lock, and one of them gets `Taken`.
        pub fn rename(&mut self, id: u64, old: &str, new: &str) -> Result<(), NickError> {
            if !valid_nick(new) {
                return Err(NickError::Invalid);
            }
            let key = new.to_ascii_lowercase();
            if is_guest_name(&key) && key != old.to_ascii_lowercase() {
                return Err(NickError::Reserved);
            }
            match self.by_key.get(&key) {
                Some((owner, _)) if *owner != id => return Err(NickError::Taken),
                _ => {}
            }
            self.release(id, old);
            self.by_key.insert(key, (id, new.to_string()));
            Ok(())
        }

        /// Frees `name` if `id` holds it (a client that never got it cannot free someone else's).
        pub fn release(&mut self, id: u64, name: &str) {
            let key = name.to_ascii_lowercase();
            if self.by_key.get(&key).is_some_and(|(owner, _)| *owner == id) {
                self.by_key.remove(&key);
            }
        }

        /// How many names are in use, and at most `max` of them, sorted.
        pub fn list(&self, max: usize) -> (usize, Vec<&str>) {
            let mut names: Vec<&str> = self.by_key.values().map(|(_, n)| n.as_str()).collect();
            let total = names.len();
            // Sort a bounded selection only: `select_nth_unstable` is O(n), a full sort
            // O(n log n) under the lock with 10,000 names.
            if names.len() > max {
                names.select_nth_unstable(max);
                names.truncate(max);
            }
            names.sort_unstable();
            (total, names)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn names_are_unique_ignoring_case_and_guest_names_are_reserved() {
            let mut nicks = Nicks::default();
            let a = nicks.guest(1);
            let b = nicks.guest(2);
            assert_eq!(nicks.rename(1, &a, "alice"), Ok(()));
            assert_eq!(nicks.rename(2, &b, "ALICE"), Err(NickError::Taken));
            assert_eq!(nicks.rename(2, &b, "guest7"), Err(NickError::Reserved));
            assert_eq!(nicks.rename(2, &b, "Guest1"), Err(NickError::Reserved));
            assert_eq!(nicks.rename(2, &b, "not valid!"), Err(NickError::Invalid));
            // Changing the case of your own name is fine.
            assert_eq!(nicks.rename(1, "alice", "Alice"), Ok(()));
            assert_eq!(nicks.list(10), (2, vec!["Alice", "guest2"]));
        }

        #[test]
        fn only_the_holder_releases_a_name() {
            let mut nicks = Nicks::default();
            let a = nicks.guest(1);
            nicks.rename(1, &a, "bob").unwrap();
            nicks.release(2, "bob"); // client 2 never held it
            assert_eq!(nicks.rename(3, "guest3", "bob"), Err(NickError::Taken));
            nicks.release(1, "BOB");
            assert_eq!(nicks.rename(3, "guest3", "bob"), Ok(()));
        }
    }
}

/// The room: who is in, what they say, and the notices about it. Shared by every client task.
mod room {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use bytes::Bytes;
    use tokio::sync::broadcast;
    use tokio_util::sync::CancellationToken;

    use super::names::Nicks;

    /// The limits every client obeys, whatever its transport.
    #[derive(Debug, Clone)]
    pub struct Config {
        pub max_clients: usize,
        pub max_line: usize,
        /// Broadcast ring capacity: how far a client may fall behind before it is dropped.
        pub queue: usize,
        pub write_timeout: Duration,
        pub idle_timeout: Duration,
        pub notice_interval: Duration,
        /// The HTML page served at `/` (the harness embeds `static/chat.html`).
        pub page: &'static str,
    }

    /// One line on its way to every client, formatted once. `Bytes` clones are a reference-count
    /// increment, so 10,000 receivers share one allocation.
    #[derive(Clone, Debug)]
    pub struct Msg {
        /// Client id of the author (0 = the server), so the author can skip its own line.
        pub from: u64,
        /// Valid UTF-8 (made from a `String`), ending in `\n`.
        pub line: Bytes,
    }

    /// Counters for the stats line. Relaxed atomics: independent tallies, nothing else is
    /// published through them.
    #[derive(Default, Debug)]
    pub struct Stats {
        pub connected: AtomicUsize,
        pub tcp: AtomicUsize,
        pub ws: AtomicUsize,
        pub accepted: AtomicU64,
        pub refused: AtomicU64,
        pub messages: AtomicU64,
        pub deliveries: AtomicU64,
        pub dropped_slow: AtomicU64,
    }

    /// Everything the client tasks share. The locks are `std::sync::Mutex`: held for
    /// microseconds and never across an `.await`, which is when tokio recommends std's mutex.
    pub struct Room {
        tx: broadcast::Sender<Msg>,
        pub nicks: Mutex<Nicks>,
        notices: Mutex<Notices>,
        pub stats: Arc<Stats>,
        pub config: Config,
        next_id: AtomicU64,
    }

    /// A place in the room, taken before a client is served and freed when dropped, however
    /// its task ends. Both transports draw from the same `max_clients`.
    pub struct Seat {
        pub room: Arc<Room>,
        pub id: u64,
    }

    impl Drop for Seat {
        fn drop(&mut self) {
            self.room.stats.connected.fetch_sub(1, Relaxed);
        }
    }

    impl Room {
        pub fn new(config: Config, stats: Arc<Stats>) -> Arc<Room> {
            let (tx, _) = broadcast::channel(config.queue.max(1));
            Arc::new(Room {
                tx,
                nicks: Mutex::default(),
                notices: Mutex::default(),
                stats,
                config,
                next_id: AtomicU64::new(1),
            })
        }

        /// A seat, or `None` when `max_clients` are in. A compare-and-swap loop, not
        /// load-then-add: the TCP and HTTP accept loops take seats concurrently.
        pub fn try_seat(self: &Arc<Self>) -> Option<Seat> {
            let max = self.config.max_clients;
            let taken = self
                .stats
                .connected
                .fetch_update(Relaxed, Relaxed, |n| (n < max).then_some(n + 1));
            taken.ok()?;
            Some(Seat {
                room: Arc::clone(self),
                id: self.next_id.fetch_add(1, Relaxed),
            })
        }

        pub fn subscribe(&self) -> broadcast::Receiver<Msg> {
            self.tx.subscribe()
        }

        pub fn broadcast(&self, from: u64, line: String) {
            self.stats.messages.fetch_add(1, Relaxed);
            // `send` fails only when nobody is subscribed: nobody to tell.
            let _ = self.tx.send(Msg {
                from,
                line: Bytes::from(line),
            });
        }

        /// Registers client `id` under its guest name, announced with the next notice flush.
        pub fn join(&self, id: u64) -> String {
            let nick = self.nicks.lock().expect("nicks lock poisoned").guest(id);
            self.notices
                .lock()
                .expect("notices lock poisoned")
                .join(&nick);
            nick
        }

        /// Frees `nick`; `why` (empty for a plain quit) goes into the leave notice, `None`
        /// when the server is stopping and nobody is left to tell.
        pub fn leave(&self, id: u64, nick: &str, why: Option<&str>) {
            self.nicks
                .lock()
                .expect("nicks lock poisoned")
                .release(id, nick);
            if let Some(why) = why {
                self.notices
                    .lock()
                    .expect("notices lock poisoned")
                    .leave(nick, why);
            }
        }

        /// Sends the collected join/leave notices every `notice_interval`, as one line each,
        /// followed by how many are online.
        pub async fn flush_notices(self: Arc<Self>, shutdown: CancellationToken) {
            let mut tick = tokio::time::interval(self.config.notice_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let lines = self
                    .notices
                    .lock()
                    .expect("notices lock poisoned")
                    .take_lines();
                if lines.is_empty() {
                    continue;
                }
                for line in lines {
                    self.broadcast(0, line);
                }
                let online = self.stats.connected.load(Relaxed);
                self.broadcast(0, format!("* {online} online\n"));
            }
        }
    }

    /// Joins and leaves waiting for the next flush. Only the first few names are kept, so a
    /// storm of 10,000 joins costs three strings and a counter, not a 10,000-entry queue.
    #[derive(Default, Debug)]
    pub struct Notices {
        joined: Vec<String>,
        joined_count: usize,
        left: Vec<String>,
        left_count: usize,
    }

    const NOTICE_NAMES: usize = 3;

    impl Notices {
        pub fn join(&mut self, nick: &str) {
            self.joined_count += 1;
            if self.joined.len() < NOTICE_NAMES {
                self.joined.push(nick.to_string());
            }
        }

        pub fn leave(&mut self, nick: &str, why: &str) {
            self.left_count += 1;
            if self.left.len() < NOTICE_NAMES {
                self.left.push(if why.is_empty() {
                    nick.to_string()
                } else {
                    format!("{nick} ({why})")
                });
            }
        }

        /// The lines for everything collected since the last call, and reset.
        pub fn take_lines(&mut self) -> Vec<String> {
            let mut out = Vec::new();
            for (names, count, verb) in [
                (&mut self.joined, &mut self.joined_count, "joined"),
                (&mut self.left, &mut self.left_count, "left"),
            ] {
                match *count {
                    0 => {}
                    1 => out.push(format!("* {} {verb}\n", names[0])),
                    n => {
                        let more = n - names.len();
                        let tail = if more > 0 {
                            format!(" and {more} others")
                        } else {
                            String::new()
                        };
                        out.push(format!("* {n} users {verb}: {}{tail}\n", names.join(", ")));
                    }
                }
                names.clear();
                *count = 0;
            }
            out
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_storm_of_joins_is_one_line() {
            let mut n = Notices::default();
            for i in 0..42 {
                n.join(&format!("guest{i}"));
            }
            n.leave("bob", "too slow");
            assert_eq!(
                n.take_lines(),
                vec![
                    "* 42 users joined: guest0, guest1, guest2 and 39 others\n",
                    "* bob (too slow) left\n"
                ]
            );
            assert!(n.take_lines().is_empty(), "flushing resets the counters");
        }
    }
}

/// What a line from a client means: a command or a chat line. Pure functions of the room.
mod commands {
    use super::room::Room;

    /// `/list` shows at most this many names: the reply stays a line, not 200 KiB.
    const LIST_MAX: usize = 50;

    const HELP: &str = "* commands: /nick NAME (rename), /list (who is online), /quit (leave), \
                        /help; anything else is said to everyone\n";

    /// What a line asks the client's task to do.
    pub enum Reply {
        None,
        Line(String),
        Quit,
    }

    /// Characters that must not reach other people's screens: C0/C1 controls (terminal escape
    /// sequences clear screens and fake prompts) and the Unicode bidi controls, which reorder
    /// what is displayed (`U+202E` makes `exe.txt` read as `txt.exe`: "Trojan Source").
    fn is_unsafe(c: char) -> bool {
        (c.is_control() && c != '\t')
            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
            || matches!(
                c,
                '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{2028}' | '\u{2029}'
            )
    }

    /// Bytes from the network are not text: invalid UTF-8 becomes `�`, unsafe characters `?`.
    pub fn sanitize(raw: &[u8]) -> String {
        String::from_utf8_lossy(raw)
            .chars()
            .map(|c| if is_unsafe(c) { '?' } else { c })
            .collect()
    }

    /// Interprets one line from client `id`, whose name is `nick` (updated by `/nick`).
    pub fn command(room: &Room, id: u64, nick: &mut String, raw: &[u8]) -> Reply {
        let text = sanitize(raw);
        let text = text.trim_end();
        let (cmd, arg) = match text.split_once(' ') {
            Some((c, a)) => (c, a.trim()),
            None => (text, ""),
        };
        match cmd {
            "" => Reply::None,
            "/quit" => Reply::Quit,
            "/help" => Reply::Line(HELP.to_string()),
            "/list" => {
                let nicks = room.nicks.lock().expect("nicks lock poisoned");
                let (total, names) = nicks.list(LIST_MAX);
                let more = if total > names.len() {
                    format!(" (and {} more)", total - names.len())
                } else {
                    String::new()
                };
                Reply::Line(format!("* {total} online: {}{more}\n", names.join(", ")))
            }
            "/nick" if arg == nick => Reply::Line(format!("* you are already {arg}\n")),
            "/nick" => {
                let renamed = room
                    .nicks
                    .lock()
                    .expect("nicks lock poisoned")
                    .rename(id, nick, arg);
                if let Err(e) = renamed {
                    return Reply::Line(e.message(arg) + "\n");
                }
                room.broadcast(id, format!("* {nick} is now {arg}\n"));
                tracing::debug!(from = %nick, to = arg, "renamed");
                *nick = arg.to_string();
                Reply::Line(format!("* you are now {arg}\n"))
            }
            c if c.starts_with('/') => {
                Reply::Line(format!("error: unknown command {c}; /help lists them\n"))
            }
            _ => {
                room.broadcast(id, format!("{nick}: {text}\n"));
                Reply::None
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn sanitize_replaces_bad_bytes_escapes_and_bidi_controls() {
            assert_eq!(sanitize(b"a\xffb\x1b[2Jc\td"), "a\u{fffd}b?[2Jc\td");
            for c in [
                '\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}', '\u{200E}', '\u{200F}',
            ] {
                assert_eq!(sanitize(format!("x{c}y").as_bytes()), "x?y", "{c:?}");
            }
            assert_eq!(sanitize("\u{061C}é ✓".as_bytes()), "?é ✓");
        }
    }
}

/// One client's life, whatever carries its lines: join, welcome, then `select!` over shutdown,
/// the room's broadcast, its own input and an idle timer; then last words and leave.
mod session {
    use std::io;
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::Duration;

    use bytes::Bytes;
    use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
    use tokio_util::sync::CancellationToken;

    use super::commands::{Reply, command};
    use super::room::{Msg, Seat};

    /// How long last words (a goodbye, an error) may take before we close anyway.
    const LAST_WORDS_TIMEOUT: Duration = Duration::from_secs(1);
    /// Most bytes handed to one flush when several lines wait (one syscall, not 50).
    const MAX_BATCH: usize = 64 * 1024;

    /// What came in from the client.
    pub enum Incoming {
        Line(Bytes),
        /// Something we do not take (a binary frame): answer with this line, stay connected.
        Refused(&'static str),
        End(Leave),
    }

    /// Why a session ended: the leave notice says it, the transport turns it into last words.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Leave {
        Quit,
        Closed,
        TooLong,
        /// Not UTF-8 where the protocol requires it (a WebSocket text frame).
        BadText,
        /// A WebSocket protocol violation (unmasked frame, bad opcode, ...).
        Protocol,
        Idle,
        Slow,
        Shutdown,
        Error,
    }

    impl Leave {
        /// For the leave notice; `None`: do not announce (the server is stopping).
        pub fn why(self) -> Option<&'static str> {
            Some(match self {
                Leave::Shutdown => return None,
                Leave::Quit | Leave::Closed => "",
                Leave::TooLong => "line too long",
                Leave::BadText => "invalid UTF-8",
                Leave::Protocol => "protocol error",
                Leave::Idle => "idle",
                Leave::Slow => "too slow",
                Leave::Error => "connection error",
            })
        }

        /// The line the client gets before we close, if it can still be reached.
        pub fn last_words(self) -> Option<&'static str> {
            match self {
                Leave::Quit => Some("* bye\n"),
                Leave::TooLong => Some("error: line too long, closing\n"),
                Leave::BadText => Some("error: invalid UTF-8 in a text message, closing\n"),
                Leave::Idle => Some("* idle timeout, bye\n"),
                Leave::Shutdown => Some("* server shutting down, goodbye\n"),
                Leave::Closed | Leave::Protocol | Leave::Slow | Leave::Error => None,
            }
        }
    }

    /// How lines get in and out of one connection. `read_line` must be cancel-safe: it loses
    /// nothing when `select!` drops it because another branch won.
    pub trait Transport: Send {
        /// `"tcp"` or `"ws"`, for the stats and the logs.
        const PROTOCOL: &'static str;
        fn read_line(&mut self) -> impl Future<Output = Incoming> + Send;
        /// Queues one line (ending in `\n`); nothing is sent before `flush`.
        fn feed(&mut self, line: Bytes) -> impl Future<Output = io::Result<()>> + Send;
        fn flush(&mut self) -> impl Future<Output = io::Result<()>> + Send;
        /// Says goodbye the way this transport does (a line, a close frame), then closes.
        fn close(&mut self, leave: Leave) -> impl Future<Output = ()> + Send;
    }

    /// Runs one client until it leaves or `shutdown` fires. The seat is freed when this returns.
    pub async fn session<T: Transport>(seat: Seat, mut conn: T, shutdown: CancellationToken) {
        let (room, id) = (&seat.room, seat.id);
        let cfg = &room.config;
        let per_protocol = if T::PROTOCOL == "ws" {
            &room.stats.ws
        } else {
            &room.stats.tcp
        };
        per_protocol.fetch_add(1, Relaxed);
        // Subscribe before the welcome: everything broadcast after "welcome" reaches us. A
        // receiver is a cursor into the one shared ring (16 bytes), not a queue.
        let mut rx = room.subscribe();
        let mut nick = room.join(id);
        tracing::Span::current().record("nick", nick.as_str());
        tracing::debug!("joined");

        let leave = 'session: {
            let online = room.stats.connected.load(Relaxed);
            let welcome = format!("* welcome {nick}! {online} online; /help for commands\n");
            if let Err(leave) = send_now(&mut conn, welcome, cfg.write_timeout).await {
                break 'session leave;
            }
            let idle = tokio::time::sleep(cfg.idle_timeout);
            tokio::pin!(idle);
            // Created once: a `cancelled()` future registers with the token (a lock shared by
            // every client) when first polled; inside the loop that would be two lock
            // operations per message per client.
            let stopping = shutdown.cancelled();
            tokio::pin!(stopping);
            loop {
                // `biased`: shutdown first, then outgoing lines before more input, so the
                // client's backlog stays short. Every branch is cancel-safe.
                tokio::select! {
                    biased;
                    () = &mut stopping => break 'session Leave::Shutdown,
                    msg = rx.recv() => match msg {
                        Ok(msg) => match deliver(msg, &mut rx, &mut conn, id, cfg.write_timeout).await {
                            Ok(n) => { room.stats.deliveries.fetch_add(n, Relaxed); }
                            Err(leave) => break 'session leave,
                        },
                        Err(RecvError::Lagged(_)) => break 'session Leave::Slow,
                        Err(RecvError::Closed) => break 'session Leave::Shutdown,
                    },
                    incoming = conn.read_line() => {
                        let line = match incoming {
                            Incoming::Line(line) => line,
                            Incoming::Refused(why) => {
                                if let Err(leave) = send_now(&mut conn, why.to_string(), cfg.write_timeout).await {
                                    break 'session leave;
                                }
                                continue;
                            }
                            Incoming::End(leave) => break 'session leave,
                        };
                        idle.as_mut().reset(tokio::time::Instant::now() + cfg.idle_timeout);
                        match command(room, id, &mut nick, &line) {
                            Reply::None => {}
                            Reply::Quit => break 'session Leave::Quit,
                            Reply::Line(reply) => {
                                if let Err(leave) = send_now(&mut conn, reply, cfg.write_timeout).await {
                                    break 'session leave;
                                }
                            }
                        }
                    }
                    () = &mut idle => break 'session Leave::Idle,
                }
            }
        };

        if leave == Leave::Slow {
            room.stats.dropped_slow.fetch_add(1, Relaxed);
        }
        let _ = tokio::time::timeout(LAST_WORDS_TIMEOUT, conn.close(leave)).await;
        tracing::debug!(%nick, reason = ?leave, "left");
        room.leave(id, &nick, leave.why());
        per_protocol.fetch_sub(1, Relaxed);
    }

    /// One line, now, within `limit`.
    async fn send_now<T: Transport>(
        conn: &mut T,
        line: String,
        limit: Duration,
    ) -> Result<(), Leave> {
        let sent = tokio::time::timeout(limit, async {
            conn.feed(Bytes::from(line)).await?;
            conn.flush().await
        });
        match sent.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Leave::Error),
            // The socket accepted nothing for `limit`: the client stopped reading.
            Err(_) => Err(Leave::Slow),
        }
    }

    /// Writes `first` and whatever else already waits in the ring as one flush. Returns how
    /// many lines went out.
    async fn deliver<T: Transport>(
        first: Msg,
        rx: &mut broadcast::Receiver<Msg>,
        conn: &mut T,
        id: u64,
        write_timeout: Duration,
    ) -> Result<u64, Leave> {
        let batch = async {
            let (mut count, mut bytes) = (0u64, 0usize);
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                if msg.from != id {
                    count += 1;
                    bytes += msg.line.len();
                    conn.feed(msg.line).await.map_err(|_| Leave::Error)?;
                }
                if bytes >= MAX_BATCH {
                    break;
                }
                next = match rx.try_recv() {
                    Ok(msg) => Some(msg),
                    Err(TryRecvError::Empty | TryRecvError::Closed) => None,
                    Err(TryRecvError::Lagged(_)) => return Err(Leave::Slow),
                };
            }
            if count > 0 {
                conn.flush().await.map_err(|_| Leave::Error)?;
            }
            Ok(count)
        };
        // The whole batch within `write_timeout`: a client whose socket stays full that long
        // stopped reading. Waiting longer would only make it fall behind the ring anyway.
        tokio::time::timeout(write_timeout, batch)
            .await
            .unwrap_or(Err(Leave::Slow))
    }
}

/// The line transport: `nc`, telnet, `chat-client`.
mod tcp {
    use std::io;
    use std::sync::Arc;
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::Duration;

    use bytes::{Bytes, BytesMut};
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};
    use tokio_util::codec::FramedRead;
    use tokio_util::sync::CancellationToken;
    use tokio_util::task::TaskTracker;
    use tracing::Instrument;

    use super::line_codec::{LineCodec, LineError};
    use super::room::Room;
    use super::session::{Incoming, Leave, Transport, session};

    /// Initial read buffer per client. `FramedRead`'s default is 8 KiB, allocated up front: with
    /// 10,000 idle clients that alone is 80 MiB. Chat lines are short; it grows for a long one.
    const READ_BUF: usize = 256;

    pub struct TcpConn {
        /// The socket inside its line reader; writes go through `get_mut()`. No split: one task
        /// reads and writes, never both at once.
        lines: FramedRead<TcpStream, LineCodec>,
        /// The first queued line, written as is (no copy) when it is the only one.
        first: Option<Bytes>,
        /// Further queued lines, copied together for one write, then freed.
        more: BytesMut,
    }

    impl TcpConn {
        pub fn new(stream: TcpStream, max_line: usize) -> TcpConn {
            TcpConn {
                lines: FramedRead::with_capacity(stream, LineCodec::new(max_line), READ_BUF),
                first: None,
                more: BytesMut::new(),
            }
        }
    }

    impl Transport for TcpConn {
        const PROTOCOL: &'static str = "tcp";

        async fn read_line(&mut self) -> Incoming {
            match self.lines.next().await {
                Some(Ok(line)) => Incoming::Line(line.freeze()),
                None => Incoming::End(Leave::Closed),
                Some(Err(LineError::TooLong)) => Incoming::End(Leave::TooLong),
                Some(Err(LineError::Io)) => Incoming::End(Leave::Error),
            }
        }

        async fn feed(&mut self, line: Bytes) -> io::Result<()> {
            match self.first.take() {
                None if self.more.is_empty() => self.first = Some(line),
                first => {
                    // A second line waits: only now is a copy worth it (one write, not two).
                    if let Some(first) = first {
                        self.more.extend_from_slice(&first);
                    }
                    self.more.extend_from_slice(&line);
                }
            }
            Ok(())
        }

        async fn flush(&mut self) -> io::Result<()> {
            let stream = self.lines.get_mut();
            if let Some(line) = self.first.take() {
                stream.write_all(&line).await?;
            }
            if !self.more.is_empty() {
                // `take`: the batch buffer is freed, not kept by 10,000 idle clients.
                stream.write_all(&std::mem::take(&mut self.more)).await?;
            }
            Ok(())
        }

        async fn close(&mut self, leave: Leave) {
            if let Some(words) = leave.last_words() {
                let stream = self.lines.get_mut();
                let _ = stream.write_all(words.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
        }
    }

    /// Accepts line clients until `shutdown`; each gets a seat and its own task.
    pub async fn accept_tcp(
        listener: TcpListener,
        room: Arc<Room>,
        tracker: TaskTracker,
        shutdown: CancellationToken,
    ) {
        loop {
            let (stream, peer) = tokio::select! {
                () = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => { pause_after_accept_error(e).await; continue; }
                },
            };
            room.stats.accepted.fetch_add(1, Relaxed);
            // Nagle's algorithm would hold a small line back while an earlier one is unacked.
            let _ = stream.set_nodelay(true);
            let Some(seat) = room.try_seat() else {
                room.stats.refused.fetch_add(1, Relaxed);
                let line = format!(
                    "error: server full ({} clients), try again later\n",
                    room.config.max_clients
                );
                tracker.spawn(last_words(stream, line));
                continue;
            };
            let span =
                tracing::info_span!("client", proto = "tcp", %peer, nick = tracing::field::Empty);
            let conn = TcpConn::new(stream, room.config.max_line);
            tracker.spawn(session(seat, conn, shutdown.clone()).instrument(span));
        }
    }

    /// EMFILE/ENFILE (out of file descriptors) and ECONNABORTED are per-connection troubles, not
    /// reasons to stop serving. Without the pause an EMFILE loop spins at 100% CPU, because the
    /// pending connection stays in the backlog.
    pub async fn pause_after_accept_error(e: io::Error) {
        tracing::warn!(%e, "accept failed; pausing 100 ms");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    /// Writes one line, then closes, without waiting forever on a client that does not read.
    async fn last_words(mut stream: TcpStream, line: String) {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            stream.write_all(line.as_bytes()).await?;
            stream.shutdown().await
        })
        .await;
    }
}

/// The WebSocket transport: one text message per line, over a connection hyper has upgraded.
mod ws {
    use std::io;

    use bytes::Bytes;
    use futures::{SinkExt, StreamExt};
    use hyper::upgrade::Upgraded;
    use hyper_util::rt::TokioIo;
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
    use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

    use super::session::{Incoming, Leave, Transport};

    /// Read buffer per WebSocket, allocated up front by tungstenite: 1 KiB × 10,000 = 10 MiB
    /// (its default, 128 KiB, would be 1.3 GB). A longer message grows it, up to `--max-line`.
    const WS_READ_BUF: usize = 1024;
    /// Queued frames are written out once they exceed this; the buffer exists only while
    /// frames wait, and keeps at most this much capacity afterwards.
    const WS_WRITE_BUF: usize = 4 * 1024;
    /// Frames queued for a client whose socket is full, before it counts as too slow.
    const WS_MAX_WRITE_BUF: usize = 64 * 1024;
    pub fn ws_config(max_line: usize) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(WS_READ_BUF)
            .write_buffer_size(WS_WRITE_BUF)
            // Room for one of the longest lines we send (a line of `max_line` plus a nick).
            .max_write_buffer_size(WS_MAX_WRITE_BUF.max(WS_WRITE_BUF + 2 * max_line + 4096))
            .max_message_size(Some(max_line))
            .max_frame_size(Some(max_line))
    }

    pub struct WsConn {
        ws: WebSocketStream<TokioIo<Upgraded>>,
    }

    fn io_error(e: WsError) -> io::Error {
        io::Error::other(e)
    }

    impl Transport for WsConn {
        const PROTOCOL: &'static str = "ws";

        async fn read_line(&mut self) -> Incoming {
            loop {
                return match self.ws.next().await {
                    Some(Ok(Message::Text(text))) => Incoming::Line(Bytes::from(text)),
                    Some(Ok(Message::Binary(_))) => {
                        Incoming::Refused("error: binary messages are not supported; send text\n")
                    }
                    // tungstenite answers pings itself, with the next read or write.
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                    Some(Ok(Message::Close(_))) | None => Incoming::End(Leave::Closed),
                    Some(Err(WsError::Capacity(_))) => Incoming::End(Leave::TooLong),
                    Some(Err(WsError::Utf8(_))) => Incoming::End(Leave::BadText),
                    Some(Err(WsError::Protocol(_))) => Incoming::End(Leave::Protocol),
                    Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                        Incoming::End(Leave::Closed)
                    }
                    Some(Err(_)) => Incoming::End(Leave::Error),
                };
            }
        }

        async fn feed(&mut self, line: Bytes) -> io::Result<()> {
            // One text message per line, without its `\n`. Lines are made from `String`s, so
            // the check cannot fail; it costs a scan of a short line.
            let text = line.slice(..line.len().saturating_sub(1));
            let text = Utf8Bytes::try_from(text).map_err(io::Error::other)?;
            self.ws.feed(Message::Text(text)).await.map_err(io_error)
        }

        async fn flush(&mut self) -> io::Result<()> {
            SinkExt::flush(&mut self.ws).await.map_err(io_error)
        }

        async fn close(&mut self, leave: Leave) {
            if let Some(words) = leave.last_words() {
                let _ = self.feed(Bytes::from_static(words.as_bytes())).await;
            }
            let (code, reason) = match leave {
                Leave::Quit => (CloseCode::Normal, "bye"),
                Leave::Idle => (CloseCode::Normal, "idle timeout"),
                Leave::Shutdown => (CloseCode::Away, "server shutting down"),
                Leave::TooLong => (CloseCode::Size, "message too long"),
                Leave::BadText => (CloseCode::Invalid, "invalid UTF-8"),
                Leave::Protocol => (CloseCode::Protocol, "protocol error"),
                // The client closed: tungstenite queued its reply; send it. A slow or broken
                // connection would only make us wait.
                Leave::Closed => return drop(SinkExt::flush(&mut self.ws).await),
                Leave::Slow | Leave::Error => return,
            };
            let frame = CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            };
            let _ = self.ws.close(Some(frame)).await;
        }
    }

    impl WsConn {
        /// Tells a client it cannot come in: `line`, then close code 1013 ("try again later").
        pub async fn refuse(&mut self, line: String) {
            let frame = CloseFrame {
                code: CloseCode::Again,
                reason: Utf8Bytes::from_static("server full"),
            };
            let _ = self.ws.send(Message::text(line)).await;
            let _ = self.ws.close(Some(frame)).await;
        }

        /// Speaks WebSocket on a connection hyper has upgraded (the 101 is already sent).
        pub async fn new(upgraded: Upgraded, max_line: usize) -> WsConn {
            let io = TokioIo::new(upgraded);
            let config = ws_config(max_line);
            WsConn {
                ws: WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await,
            }
        }
    }
}

/// The web side: `GET /` serves the page, `GET /ws` upgrades to a WebSocket that joins the same
/// room. hyper serves HTTP/1.1; tokio-tungstenite speaks WebSocket on the upgraded connection.
mod web {
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::header::{self, HeaderValue};
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Method, Request, Response, StatusCode};
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::handshake::server::create_response_with_body;
    use tokio_util::sync::CancellationToken;
    use tokio_util::task::TaskTracker;
    use tracing::Instrument;

    use super::room::Room;
    use super::session::session;
    use super::ws::WsConn;

    /// A connection that has not sent its request headers by then is closed (slowloris).
    const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

    type Body = Full<Bytes>;

    /// Accepts HTTP connections until `shutdown`; each is served by hyper in its own task.
    pub async fn accept_http(
        listener: TcpListener,
        room: Arc<Room>,
        tracker: TaskTracker,
        shutdown: CancellationToken,
    ) {
        loop {
            let (stream, peer) = tokio::select! {
                () = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => { super::tcp::pause_after_accept_error(e).await; continue; }
                },
            };
            let _ = stream.set_nodelay(true);
            let (room, tasks, stop) = (room.clone(), tracker.clone(), shutdown.clone());
            let service = service_fn(move |req| {
                let response = route(req, peer, &room, &tasks, &stop);
                async move { Ok::<_, Infallible>(response) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let stop = shutdown.clone();
            tracker.spawn(async move {
                tokio::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    () = stop.cancelled() => {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                    }
                }
            });
        }
    }

    fn text(status: StatusCode, content_type: &'static str, body: &'static str) -> Response<Body> {
        let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }

    fn route(
        req: Request<hyper::body::Incoming>,
        peer: SocketAddr,
        room: &Arc<Room>,
        tracker: &TaskTracker,
        shutdown: &CancellationToken,
    ) -> Response<Body> {
        const PLAIN: &str = "text/plain; charset=utf-8";
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/") => {
                text(StatusCode::OK, "text/html; charset=utf-8", room.config.page)
            }
            (&Method::GET, "/ws") => upgrade(req, peer, room, tracker, shutdown),
            (&Method::GET, _) => text(StatusCode::NOT_FOUND, PLAIN, "not found\n"),
            _ => text(StatusCode::METHOD_NOT_ALLOWED, PLAIN, "GET only\n"),
        }
    }

    /// A page from another site must not open a socket in its visitor's name: browsers send
    /// `Origin`, and it must name this host. Other clients send none.
    fn same_origin<B>(req: &Request<B>) -> bool {
        let Some(origin) = req.headers().get(header::ORIGIN) else {
            return true;
        };
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, host)| host);
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok());
        origin_host.is_some() && origin_host == host
    }

    fn upgrade(
        mut req: Request<hyper::body::Incoming>,
        peer: SocketAddr,
        room: &Arc<Room>,
        tracker: &TaskTracker,
        shutdown: &CancellationToken,
    ) -> Response<Body> {
        const PLAIN: &str = "text/plain; charset=utf-8";
        if !same_origin(&req) {
            return text(
                StatusCode::FORBIDDEN,
                PLAIN,
                "cross-origin WebSocket refused\n",
            );
        }
        // Checks the method, `Upgrade: websocket`, `Sec-WebSocket-Version: 13` and the key,
        // and signs the key: the 101 response.
        let Ok(response) = create_response_with_body(&req, Full::default) else {
            return text(
                StatusCode::BAD_REQUEST,
                PLAIN,
                "a WebSocket upgrade was expected\n",
            );
        };
        // hyper hands over the connection once the 101 has been written.
        let on_upgrade = hyper::upgrade::on(&mut req);
        room.stats.accepted.fetch_add(1, Relaxed);
        // Taken now, so a refused client hears why over its WebSocket.
        let seat = room.try_seat();
        let (room, shutdown) = (room.clone(), shutdown.clone());
        let span = tracing::info_span!("client", proto = "ws", %peer, nick = tracing::field::Empty);
        tracker.spawn(
            async move {
                let Ok(upgraded) = on_upgrade.await else {
                    return; // the client went away before the upgrade; the seat is dropped
                };
                let mut conn = WsConn::new(upgraded, room.config.max_line).await;
                match seat {
                    Some(seat) => session(seat, conn, shutdown).await,
                    None => {
                        room.stats.refused.fetch_add(1, Relaxed);
                        let line = format!(
                            "error: server full ({} clients), try again later",
                            room.config.max_clients
                        );
                        let _ =
                            tokio::time::timeout(Duration::from_secs(1), conn.refuse(line)).await;
                    }
                }
            }
            .instrument(span),
        );
        response
    }
}

/// Binds the listeners and runs the room until `shutdown` resolves.
mod server {
    use std::io;
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::net::{TcpListener, TcpSocket};
    use tokio_util::sync::CancellationToken;
    use tokio_util::task::TaskTracker;

    use super::room::{Config, Room, Stats};
    use super::tcp;
    use super::web;

    /// How long shutdown waits for client tasks to say goodbye before giving up on them.
    const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

    pub struct Listeners {
        /// Line clients.
        pub tcp: TcpListener,
        /// The page and `/ws`; `None` serves line clients only.
        pub http: Option<TcpListener>,
    }

    /// `TcpListener::bind` uses a backlog of 1024; a storm of 10,000 connects overflows it and
    /// the kernel drops SYNs, which clients retry only after 1 s, 3 s, 7 s. Ask for 4096 (the
    /// kernel caps it at `net.core.somaxconn`).
    pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(4096)
    }

    /// The server: accept loops, notice flusher, client tasks. Returns once `shutdown` has
    /// resolved and every client has had its goodbye (or `DRAIN_TIMEOUT` passed).
    pub async fn serve(
        listeners: Listeners,
        config: Config,
        stats: Arc<Stats>,
        shutdown: impl Future<Output = ()>,
    ) {
        let room = Room::new(config, stats);
        // One token tells every task to stop; the tracker says when they all have.
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        tracker.spawn(room.clone().flush_notices(stop.clone()));
        tracker.spawn(tcp::accept_tcp(
            listeners.tcp,
            room.clone(),
            tracker.clone(),
            stop.clone(),
        ));
        if let Some(http) = listeners.http {
            tracker.spawn(web::accept_http(
                http,
                room.clone(),
                tracker.clone(),
                stop.clone(),
            ));
        }
        shutdown.await;
        stop.cancel(); // the accept loops return and drop their listeners: no new clients
        tracker.close();
        if tokio::time::timeout(DRAIN_TIMEOUT, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = tracker.len(),
                "client tasks still running after {DRAIN_TIMEOUT:?}"
            );
        }
    }
}

// === Harness: not part of the lesson ===

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use shared::cli;
use tokio_util::sync::CancellationToken;

use room::{Config, Stats};
use server::{Listeners, bind, serve};

const DEFAULT_ADDR: &str = "127.0.0.1:6142";
/// The page, embedded in the binary: no build step, no CDN.
const PAGE: &str = include_str!("../../static/chat.html");
/// File descriptors kept for the listeners, stdio, the runtime's own fds and a safety margin.
const FD_RESERVE: u64 = 64;

/// A chat room for TCP line clients and browsers (see the file header for the protocol).
#[derive(Parser, Debug, Clone)]
#[command(version)]
struct Args {
    /// Address for line clients (`nc`); port 0 picks a free one (the first stdout line says which).
    #[arg(long, default_value = DEFAULT_ADDR)]
    addr: SocketAddr,
    /// Address for the web page and `/ws` [default: --addr's IP and port + 1; 0 stays 0].
    #[arg(long)]
    http_addr: Option<SocketAddr>,
    /// Serve line clients only.
    #[arg(long)]
    no_http: bool,
    /// Most clients at once, both protocols; newcomers beyond it are told `server full`
    /// [default: what the open-file limit allows, minus a reserve].
    #[arg(long, value_parser = cli::usize_in(1, 10_000_000))]
    max_clients: Option<usize>,
    /// Longest line in bytes (its `\n` or `\r\n` not counted); longer closes that connection.
    #[arg(long, default_value_t = 4096, value_parser = cli::usize_in(1, 1 << 20))]
    max_line: usize,
    /// Broadcast ring capacity: how many lines a client may fall behind before it is dropped.
    #[arg(long, default_value_t = 1024, value_parser = cli::usize_in(1, 1 << 20))]
    queue: usize,
    /// Drop a client whose socket accepts nothing for this long (it stopped reading).
    #[arg(long, default_value = "5s", value_parser = cli::duration_in(Duration::from_millis(1), Duration::from_secs(3600)))]
    write_timeout: Duration,
    /// Close a client that sends nothing for this long.
    #[arg(long, default_value = "10m", value_parser = cli::duration_in(Duration::from_secs(1), Duration::from_secs(7 * 86_400)))]
    idle_timeout: Duration,
    /// Join/leave notices are collected and sent as one line this often.
    #[arg(long, default_value = "500ms", value_parser = cli::duration_in(Duration::from_millis(10), Duration::from_secs(3600)))]
    notice_interval: Duration,
    /// Print a stats line this often.
    #[arg(long, default_value = "5s", value_parser = cli::duration_in(Duration::from_millis(100), Duration::from_secs(86_400)))]
    stats_interval: Duration,
    /// Stop by itself after this long [default: run until Ctrl-C or SIGTERM].
    #[arg(long, value_parser = cli::duration_in(Duration::from_millis(1), Duration::from_secs(365 * 86_400)))]
    duration: Option<Duration>,
}

impl Args {
    fn http_addr(&self) -> Option<SocketAddr> {
        if self.no_http {
            return None;
        }
        Some(self.http_addr.unwrap_or_else(|| {
            let port = match self.addr.port() {
                0 => 0,
                p => p.saturating_add(1),
            };
            SocketAddr::new(self.addr.ip(), port)
        }))
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // `RUST_LOG=chat_server=debug`: one span per connection, joins and leaves with reasons.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // The multi-thread runtime (one worker per core) lets both cores write to sockets during a
    // broadcast; a current-thread runtime measured 30–40% worse p99 at 10,000 clients.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    rt.block_on(run_server(args))
}

async fn run_server(args: Args) -> anyhow::Result<()> {
    // SIGINT and SIGTERM are registered here, before the address is printed: a signal sent as
    // soon as a script reads that line must find the handler (a second signal forces the exit).
    let signalled = shared::shutdown::cancel_on_ctrl_c();
    let old_limit = nofile_soft_limit();
    let limit = shared::monitor::raise_nofile_limit().context("raising RLIMIT_NOFILE")?;
    let capacity = usize::try_from(limit.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX);
    let max_clients = args.max_clients.unwrap_or(capacity);

    let tcp = bind(args.addr).with_context(|| format!("binding {}", args.addr))?;
    let local = tcp.local_addr().context("reading the bound address")?;
    let http = match args.http_addr() {
        Some(addr) => Some(bind(addr).with_context(|| {
            format!(
                "binding {addr} for the web page (choose another with --http-addr, or --no-http)"
            )
        })?),
        None => None,
    };
    println!("chat-server listening on {local}");
    match &http {
        Some(http) => {
            let web = http.local_addr().context("reading the bound web address")?;
            println!("chat-server http on {web}");
            println!(
                "try: nc {} {}  or open http://{web}/ in a browser (Ctrl-C stops the server)",
                local.ip(),
                local.port()
            );
        }
        None => println!(
            "try: nc {} {}   (Ctrl-C stops the server)",
            local.ip(),
            local.port()
        ),
    }
    println!(
        "open files: soft limit {old_limit} -> {limit}, so up to {capacity} clients; accepting {max_clients} (--max-clients)"
    );

    let config = Config {
        max_clients,
        max_line: args.max_line,
        queue: args.queue,
        write_timeout: args.write_timeout,
        idle_timeout: args.idle_timeout,
        notice_interval: args.notice_interval,
        page: PAGE,
    };
    let stats = Arc::new(Stats::default());
    let stop_printing = CancellationToken::new();
    let printer = tokio::spawn(print_stats(
        stats.clone(),
        args.stats_interval,
        stop_printing.clone(),
    ));
    let duration = args.duration;
    let shutdown = async move {
        let stop_after = async {
            match duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = signalled.cancelled() => println!("signal received: shutting down"),
            () = stop_after => println!("--duration elapsed: shutting down"),
        }
    };

    let started = Instant::now();
    serve(Listeners { tcp, http }, config, stats.clone(), shutdown).await;
    stop_printing.cancel();
    let _ = printer.await;
    let s = &stats;
    println!(
        "stopped after {:.1} s: {} clients accepted, {} refused, {} messages, {} deliveries, {} slow clients dropped",
        started.elapsed().as_secs_f64(),
        s.accepted.load(Relaxed),
        s.refused.load(Relaxed),
        s.messages.load(Relaxed),
        s.deliveries.load(Relaxed),
        s.dropped_slow.load(Relaxed),
    );
    Ok(())
}

fn nofile_soft_limit() -> u64 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into the struct we pass, which lives for the whole call.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) };
    if rc == 0 { rl.rlim_cur } else { 0 }
}

/// One stats line every `every`, plus warnings when the machine is saturated.
async fn print_stats(stats: Arc<Stats>, every: Duration, stop: CancellationToken) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let limits = shared::monitor::Thresholds {
        cpu_percent: 90.0 * cores as f64,
        rss_kib: 4 * 1024 * 1024,
    };
    let mut sampler = shared::monitor::Sampler::new();
    let mut tick = tokio::time::interval(every);
    tick.tick().await; // the first tick is immediate
    let s = &stats;
    let (mut last_msgs, mut last_deliv, mut last_dropped) = (0, 0, 0);
    let mut last = Instant::now();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let secs = last.elapsed().as_secs_f64().max(1e-9);
        last = Instant::now();
        let (msgs, deliv, dropped) = (
            s.messages.load(Relaxed),
            s.deliveries.load(Relaxed),
            s.dropped_slow.load(Relaxed),
        );
        let sample = sampler.sample();
        println!(
            "stats: {} clients ({} tcp, {} ws) | {:.1} msg/s | {:.0} deliveries/s | rss {:.1} MiB | cpu {:.0}% | {dropped} slow dropped | {} refused",
            s.connected.load(Relaxed),
            s.tcp.load(Relaxed),
            s.ws.load(Relaxed),
            (msgs - last_msgs) as f64 / secs,
            (deliv - last_deliv) as f64 / secs,
            sample.rss_kib as f64 / 1024.0,
            sample.cpu_percent,
            s.refused.load(Relaxed),
        );
        if let Some(warning) = limits.check(&sample) {
            println!("warning: {warning}: latency will grow; shed load or add cores");
        }
        if dropped > last_dropped {
            println!(
                "warning: dropped {} slow clients in the last {secs:.0} s",
                dropped - last_dropped
            );
        }
        (last_msgs, last_deliv, last_dropped) = (msgs, deliv, dropped);
    }
}

#[cfg(test)]
mod tests {
    use super::line_codec::{LineCodec, LineError};
    use super::*;
    use bytes::BytesMut;
    use proptest::prelude::*;
    use tokio_util::codec::Decoder;

    #[test]
    fn duration_flags_take_units_and_refuse_nonsense() {
        let args = Args::try_parse_from(["chat-server", "--idle-timeout", "1h 30m"]).unwrap();
        assert_eq!(args.idle_timeout, Duration::from_secs(5400));
        let args = Args::try_parse_from(["chat-server", "--write-timeout", "250ms"]).unwrap();
        assert_eq!(args.write_timeout, Duration::from_millis(250));
        assert_eq!(
            Args::try_parse_from(["chat-server"]).unwrap().idle_timeout,
            Duration::from_secs(600)
        );
        assert!(Args::try_parse_from(["chat-server", "--idle-timeout", "5 parsecs"]).is_err());
        // A bare number is refused rather than guessed (seconds? milliseconds?).
        assert!(Args::try_parse_from(["chat-server", "--idle-timeout", "2"]).is_err());
        // Zero intervals would panic in `tokio::time::interval`; huge ones overflow `Instant`.
        for flag in ["--notice-interval", "--stats-interval", "--write-timeout"] {
            assert!(
                Args::try_parse_from(["chat-server", flag, "0s"]).is_err(),
                "{flag}"
            );
        }
        assert!(Args::try_parse_from(["chat-server", "--idle-timeout", "1000000y"]).is_err());
        for flag in ["--max-line", "--queue", "--max-clients"] {
            assert!(
                Args::try_parse_from(["chat-server", flag, "0"]).is_err(),
                "{flag}"
            );
        }
    }

    #[test]
    fn the_web_page_port_follows_the_chat_port() {
        let web = |args: &[&str]| {
            let mut all = vec!["chat-server"];
            all.extend_from_slice(args);
            Args::try_parse_from(all).unwrap().http_addr()
        };
        assert_eq!(web(&[]), Some("127.0.0.1:6143".parse().unwrap()));
        assert_eq!(
            web(&["--addr", "127.0.0.1:0"]),
            Some("127.0.0.1:0".parse().unwrap())
        );
        assert_eq!(
            web(&["--http-addr", "0.0.0.0:8080"]),
            Some("0.0.0.0:8080".parse().unwrap())
        );
        assert_eq!(web(&["--no-http"]), None);
    }

    /// Lines (or the first error) from feeding `data` to a fresh codec in the pieces `cuts`
    /// makes, as a socket delivering them would.
    fn decode_in_pieces(
        data: &[u8],
        cuts: &[usize],
        max: usize,
    ) -> Vec<Result<Vec<u8>, LineError>> {
        let mut codec = LineCodec::new(max);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
        bounds.push(data.len());
        bounds.sort_unstable();
        let mut from = 0;
        for to in bounds {
            buf.extend_from_slice(&data[from..to]);
            from = to;
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(line)) => out.push(Ok(line.to_vec())),
                    Ok(None) => break,
                    Err(e) => {
                        out.push(Err(e));
                        return out;
                    }
                }
            }
        }
        loop {
            match codec.decode_eof(&mut buf) {
                Ok(Some(line)) => out.push(Ok(line.to_vec())),
                Ok(None) => return out,
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
            }
        }
    }

    /// The specification, written the obvious way: split on `\n`, drop one `\r` before it,
    /// content over `max` is an error that ends the stream.
    fn model(data: &[u8], max: usize) -> Vec<Result<Vec<u8>, LineError>> {
        let mut out = Vec::new();
        let mut pieces: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
        let last = pieces.pop().unwrap_or_default();
        let tail = (!last.is_empty()).then_some(last);
        for piece in pieces.into_iter().chain(tail) {
            let line = piece.strip_suffix(b"\r").unwrap_or(piece);
            if line.len() > max {
                out.push(Err(LineError::TooLong));
                break;
            }
            out.push(Ok(line.to_vec()));
        }
        out
    }

    fn bytes_with_many_newlines() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'a'), any::<u8>()],
            0..120,
        )
    }

    proptest! {
        #[test]
        fn the_codec_gives_the_same_lines_however_tcp_splits_the_bytes(
            data in bytes_with_many_newlines(),
            cuts in proptest::collection::vec(any::<usize>(), 0..12),
            max in 0usize..16,
        ) {
            let whole = decode_in_pieces(&data, &[], max);
            prop_assert_eq!(&decode_in_pieces(&data, &cuts, max), &whole);
            prop_assert_eq!(&whole, &model(&data, max));
        }
    }
}
