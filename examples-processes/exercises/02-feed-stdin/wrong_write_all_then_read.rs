// A plausible wrong solution of processes/02: write everything, close, then read. Correct for
// any input that fits in the pipe buffers (64 KiB each way), which is every input of a quick
// test. With 4 MiB, `cat` fills its stdout pipe, stops reading its stdin, and our `write_all`
// waits forever for room.

use std::io::{self, Read, Write};
use std::process::{Command, ExitStatus, Stdio};

pub fn filter_through(
    program: &str,
    args: &[&str],
    input: &[u8],
) -> io::Result<(Vec<u8>, ExitStatus)> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("stdin was piped");
    let mut stdout = child.stdout.take().expect("stdout was piped");
    match stdin.write_all(input) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        written => written?,
    }
    drop(stdin);
    let mut output = Vec::new();
    stdout.read_to_end(&mut output)?;
    Ok((output, child.wait()?))
}
