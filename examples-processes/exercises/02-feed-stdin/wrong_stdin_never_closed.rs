// A plausible wrong solution of processes/02: a writer thread, as the hint says, but it
// *borrows* `stdin` (no `move`), so the `ChildStdin` lives until the end of the scope, after
// the read. The child never sees the end of its input, keeps waiting for more, never closes its
// stdout, and `read_to_end` waits for that EOF forever: a deadlock even with 0 bytes of input.

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
    let output = std::thread::scope(|s| -> io::Result<Vec<u8>> {
        let writer = s.spawn(|| match stdin.write_all(input) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            written => written,
        });
        let mut output = Vec::new();
        stdout.read_to_end(&mut output)?;
        writer.join().expect("the writer thread does not panic")?;
        Ok(output)
    })?;
    Ok((output, child.wait()?))
}
