//! What the command-line tests share: the real binary, run the way an operator would, without
//! the caller's `INKINGI_*` settings (a developer's environment must not change a test).

// Each test binary uses a part of this module.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

pub const BIN: &str = env!("CARGO_BIN_EXE_inkingi");

/// The names of the caller's `INKINGI_*` variables, for a command to remove.
pub fn inherited_settings() -> Vec<String> {
    std::env::vars()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("INKINGI_"))
        .collect()
}

/// `inkingi` with none of the caller's settings and warnings-only logs.
pub fn command() -> Command {
    let mut c = Command::new(BIN);
    for k in inherited_settings() {
        c.env_remove(k);
    }
    c.env("RUST_LOG", "warn");
    c
}

/// [`command`] run in `dir`.
pub fn inkingi(dir: &Path) -> Command {
    let mut c = command();
    c.current_dir(dir);
    c
}

/// Runs `c` to its end: exit code (-1 when killed by a signal), stdout, stderr.
pub fn run(c: &mut Command) -> (i32, String, String) {
    let out = c.output().expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
