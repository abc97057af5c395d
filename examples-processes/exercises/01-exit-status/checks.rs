// Checks of processes/01, compiled against the learner's file, the solution and each wrong one.

use shared::exercise::{Check, ensure, watchdog};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};
use std::time::Duration;

fn sh(script: &str) -> ExitStatus {
    Command::new("sh")
        .args(["-c", script])
        .status()
        .expect("sh runs")
}

pub fn all() -> Check {
    watchdog("exit-status", Duration::from_secs(20), |progress| {
        // (what the child did, its status, the words expected)
        let exits = [
            ("sh -c 'exit 0'", sh("exit 0"), "exited with code 0"),
            ("sh -c 'exit 3'", sh("exit 3"), "exited with code 3"),
            ("sh -c 'exit 300' (only 8 bits)", sh("exit 300"), "exited with code 44"),
            ("a raw status of exit(137)", ExitStatus::from_raw(137 << 8), "exited with code 137"),
        ];
        let signals = [
            ("sh -c 'kill -TERM $$'", sh("kill -TERM $$"), "killed by signal 15 (SIGTERM)"),
            ("sh -c 'kill -KILL $$'", sh("kill -KILL $$"), "killed by signal 9 (SIGKILL)"),
            (
                "sh -c 'kill -SEGV $$' (no core file)",
                sh("ulimit -c 0; kill -SEGV $$"),
                "killed by signal 11 (SIGSEGV)",
            ),
            (
                "a raw status of SIGSEGV with a core dump (0x8b)",
                ExitStatus::from_raw(0x80 | libc::SIGSEGV),
                "killed by signal 11 (SIGSEGV)",
            ),
        ];
        for (cases, property) in [
            (&exits, "an exit is described by its code"),
            (&signals, "a signal death is described by its signal, never as a code"),
        ] {
            for (what, status, want) in cases.iter() {
                let got = describe(*status);
                progress.tick();
                ensure(got == *want, property, || {
                    format!("{what}: expected {want:?}, got {got:?}")
                })?;
            }
        }
        Ok(())
    })
}
