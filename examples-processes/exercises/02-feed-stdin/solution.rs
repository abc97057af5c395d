// Reference solution of processes/02 (see exercise.rs for the statement).

use std::io::{self, Read, Write};
use std::process::{Command, ExitStatus, Stdio};

/// Runs `program args` with `input` on its stdin; returns its stdout and its exit status.
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
    let stdin = child.stdin.take().expect("stdin was piped");
    let mut stdout = child.stdout.take().expect("stdout was piped");
    let output = std::thread::scope(|s| -> io::Result<Vec<u8>> {
        // `move`: the thread owns `stdin`, so the pipe closes when it is done: the child's EOF.
        let writer = s.spawn(move || {
            let mut stdin = stdin;
            match stdin.write_all(input) {
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()), // It stopped reading.
                written => written,
            }
        });
        let mut output = Vec::new();
        let read = stdout.read_to_end(&mut output);
        writer.join().expect("the writer thread does not panic")?;
        read?;
        Ok(output)
    });
    let status = child.wait()?; // Reaped whatever happened above: no zombie.
    Ok((output?, status))
}
