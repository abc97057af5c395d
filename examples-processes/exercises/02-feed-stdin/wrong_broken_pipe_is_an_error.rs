// A plausible wrong solution of processes/02: the right structure, but every write error is
// passed on. `head -c 10` reads ten bytes and exits; the rest of our input meets a closed pipe
// (EPIPE: Rust ignores SIGPIPE, so it is an error, not a silent death) and the call fails,
// although the child did exactly its job. Passes every test whose child reads all its input.

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
    let stdin = child.stdin.take().expect("stdin was piped");
    let mut stdout = child.stdout.take().expect("stdout was piped");
    let output = std::thread::scope(|s| -> io::Result<Vec<u8>> {
        let writer = s.spawn(move || {
            let mut stdin = stdin;
            stdin.write_all(input)
        });
        let mut output = Vec::new();
        let read = stdout.read_to_end(&mut output);
        writer.join().expect("the writer thread does not panic")?;
        read?;
        Ok(output)
    });
    let status = child.wait()?;
    Ok((output?, status))
}
