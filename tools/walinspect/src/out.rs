//! Output: text or NDJSON on stdout, errors on stderr, a quiet exit on a broken pipe.

use std::io::{self, BufWriter, Stdout, Write};
use std::process::ExitCode;

use serde_json::{json, Value};

use crate::render::EXIT_UNREADABLE;
use crate::source::InputError;

/// Exit code of a command-line usage error.
pub const EXIT_USAGE: u8 = 64;
/// Exit code when `salvage` cannot write its output store.
pub const EXIT_OUTPUT: u8 = 5;

/// Why a command stopped early.
#[derive(Debug)]
pub enum Fail {
    /// Writing to stdout failed (a broken pipe exits quietly).
    Io(io::Error),
    /// The input is unreadable or not a walden store.
    Input(InputError),
    /// Bad arguments.
    Usage(String),
    /// The output of `salvage` could not be written.
    Output(String),
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Fail {
        Fail::Io(e)
    }
}

impl From<InputError> for Fail {
    fn from(e: InputError) -> Fail {
        Fail::Input(e)
    }
}

impl Fail {
    /// Prints the failure (stderr; with `--json` also an `error` object on stdout) and returns
    /// the exit code.
    pub fn report(self, json: bool) -> ExitCode {
        let (code, kind, msg) = match self {
            Fail::Io(e) if e.kind() == io::ErrorKind::BrokenPipe => return ExitCode::SUCCESS,
            Fail::Io(e) => (EXIT_UNREADABLE as u8, "output", format!("cannot write output: {e}")),
            Fail::Input(e) => (EXIT_UNREADABLE as u8, "unreadable", e.to_string()),
            Fail::Usage(m) => (EXIT_USAGE, "usage", m),
            Fail::Output(m) => (EXIT_OUTPUT, "output", m),
        };
        if json {
            let v = json!({ "type": "error", "error_kind": kind, "error": msg, "exit_code": code });
            let mut w = io::stdout().lock();
            if writeln!(w, "{v}").and_then(|()| w.flush()).is_err() {
                return ExitCode::from(code);
            }
        }
        eprintln!("walinspect: {msg}");
        ExitCode::from(code)
    }
}

/// Where results go.
pub struct Out {
    w: BufWriter<Stdout>,
    /// NDJSON instead of text.
    pub json: bool,
}

impl Out {
    /// Output to stdout.
    pub fn new(json: bool) -> Out {
        Out { w: BufWriter::new(io::stdout()), json }
    }

    /// Writes one NDJSON object.
    pub fn obj(&mut self, v: &Value) -> io::Result<()> {
        serde_json::to_writer(&mut self.w, v).map_err(io::Error::from)?;
        self.w.write_all(b"\n")
    }

    /// Writes one line of text.
    pub fn line(&mut self, s: impl std::fmt::Display) -> io::Result<()> {
        writeln!(self.w, "{s}")
    }

    /// Writes `v` as NDJSON, or `text()` as text.
    pub fn emit(&mut self, v: &Value, text: impl FnOnce() -> String) -> io::Result<()> {
        if self.json {
            self.obj(v)
        } else {
            self.line(text())
        }
    }

    /// Flushes buffered output.
    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}
