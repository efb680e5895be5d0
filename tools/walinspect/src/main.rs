//! `walinspect`: a read-only forensic tool for walden stores.
//!
//! It reads a store directory, its `wal/` directory or a single segment file through walden's
//! public reader API (`walden::format`, `walden::wal`), never takes the store's lock and never
//! writes to the source. See `tools/walinspect/README.md` for every subcommand, the exit codes
//! and the NDJSON field names.

mod commands;
mod current;
mod diff;
mod escape;
mod follow;
mod history;
mod oneline;
mod out;
mod render;
mod salvage;
mod salvage_base;
mod snapshots;
mod source;
mod stats;
mod time;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::out::{Fail, Out};

const EXAMPLES: &str = "\
Examples:
  walinspect ./mystore                      summary of a store (the default subcommand)
  walinspect verify ./mystore; echo $?      0 clean, 1 unsynced tail, 2 damage in synced data, 3 missing/foreign/gap, 4 unreadable
  walinspect verify --json ./mystore        the verdict as one JSON object
  walinspect dump ./mystore --collection users --prefix ada --limit 20
  walinspect dump ./mystore/wal/00000000000000000003.wal --from-lsn 100 --json | jq .
  walinspect history ./mystore users ada --diff
  walinspect get ./mystore users ada        the current value (snapshot + log), exit 1 if none
  walinspect scan ./mystore users --prefix a
  walinspect dump ./mystore --oneline       one line per record
  walinspect stats ./mystore
  walinspect follow ./mystore               print records as a live store appends them (Ctrl-C stops)
  walinspect salvage ./damaged --out ./recovered   exit 1 if anything was skipped

walinspect never writes to the source, never takes the store's LOCK, and reads files whole
(no mmap), so it is safe on a live store: a record being written at the tail shows as a torn tail.
It reads the STORE file, WAL segments and snapshots (snapshot-<lsn>.snap, verified like an open).";

/// Read-only forensic tool for walden stores: verdicts, record dumps, key history, statistics,
/// live tail and salvage.
#[derive(Parser, Debug)]
#[command(name = "walinspect", version, after_help = EXAMPLES, args_conflicts_with_subcommands = true)]
struct Cli {
    /// Output one JSON object per line (NDJSON) instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Option<Command>,
    /// Store directory, `wal/` directory or segment file (runs `summary`).
    path: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Overview of the store and its verdict (the default).
    ///
    /// Segments with sizes, store id, epochs, LSN range, record counts by kind, collections,
    /// first/last timestamps, snapshots (verified), torn tails kept by earlier opens, and the
    /// verdict.
    Summary(PathArg),
    /// Check every header, record checksum and the LSN chain; the exit code is the verdict.
    ///
    /// Exit codes: 0 clean, 1 unsynced tail (what an open would cut: nothing proves it was
    /// durable), 2 damage in synced data (with the proof: a later record or segment),
    /// 3 missing segment / foreign store or epoch / LSN gap, 4 unreadable or not a walden store.
    /// At a bad point: file, byte offset, LSN of the last good record, stored vs computed CRC,
    /// a hex window, and where valid records resume (resync offset), if they do.
    Verify(PathArg),
    /// Print records: document bodies as pretty JSON, rate-limit and breaker records decoded.
    Dump(DumpArgs),
    /// Every version of one document (newest snapshot, then log): LSN, time, op, version, value.
    ///
    /// Exit 1 (and `not found`) if the document has no version on disk.
    History(HistoryArgs),
    /// The current value of one document, as an open would see it (snapshot + log).
    ///
    /// Prints the value as JSON (with `--json`: a `document` object with version, LSN, time and
    /// where it is stored). Exit 1 (and `not found`) if the document does not exist.
    Get(GetArgs),
    /// The current documents in key order, as an open would see them (snapshot + log).
    ///
    /// One line per document: `collection/key vN <JSON>` (with `--json`: `document` objects).
    Scan(ScanArgs),
    /// Where the bytes go: live vs dead, reclaimable, largest documents, sizes, limiters.
    ///
    /// Per-collection counts, live vs dead bytes, reclaimable space, largest documents, record
    /// size distribution, batch sizes, rate-limiter key counts, breaker states.
    Stats(PathArg),
    /// Print new records as a live store appends them, like `tail -f`; Ctrl-C stops.
    Follow(FollowArgs),
    /// Build a new store in --out from every valid record, reporting each damaged one skipped.
    ///
    /// Kept: the latest value of every document found in a valid record. Not kept: version
    /// numbers and timestamps (documents restart at version 1), older versions, rate-limit and
    /// breaker records, `.torn-*` files. The source is only read. A damaged snapshot is read
    /// entry by entry. Exit 0 when nothing was skipped, 1 when anything was.
    Salvage(SalvageArgs),
}

/// Just the input.
#[derive(Args, Debug)]
struct PathArg {
    /// Store directory, `wal/` directory, segment file or snapshot file.
    path: PathBuf,
}

/// Record filters shared by `dump` and `follow`.
#[derive(Args, Debug, Default, Clone)]
pub struct Filters {
    /// Only operations on this collection.
    #[arg(long)]
    pub collection: Option<String>,
    /// Only operations on this key.
    #[arg(long)]
    pub key: Option<String>,
    /// Only operations on keys starting with this prefix.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Only records with LSN >= this.
    #[arg(long)]
    pub from_lsn: Option<u64>,
    /// Only records with LSN <= this.
    #[arg(long)]
    pub to_lsn: Option<u64>,
    /// Only records committed at or after this time (Unix seconds, YYYY-MM-DD or RFC 3339 UTC).
    #[arg(long, value_parser = time::parse_time)]
    pub since: Option<u64>,
    /// Only records committed at or before this time.
    #[arg(long, value_parser = time::parse_time)]
    pub until: Option<u64>,
    /// Only records of this kind: batch, ratelimit or breaker.
    #[arg(long, value_parser = ["batch", "ratelimit", "breaker"])]
    pub kind: Option<String>,
    /// Print at most this many records.
    #[arg(long)]
    pub limit: Option<u64>,
}

#[derive(Args, Debug)]
struct DumpArgs {
    /// Store directory, `wal/` directory or segment file.
    path: PathBuf,
    /// One line of text per record (operations separated by ` | `, values as compact JSON).
    /// NDJSON (`--json`) is one line per record already.
    #[arg(long)]
    oneline: bool,
    #[command(flatten)]
    filters: Filters,
}

#[derive(Args, Debug)]
struct GetArgs {
    /// Store directory (or `wal/` directory, segment or snapshot file).
    path: PathBuf,
    /// Collection of the document.
    collection: String,
    /// Key of the document.
    key: String,
}

#[derive(Args, Debug)]
struct ScanArgs {
    /// Store directory (or `wal/` directory, segment or snapshot file).
    path: PathBuf,
    /// Only this collection (all collections if omitted).
    collection: Option<String>,
    /// Only keys starting with this prefix.
    #[arg(long)]
    prefix: Option<String>,
    /// Only keys at or after this one.
    #[arg(long)]
    from: Option<String>,
    /// Print at most this many documents.
    #[arg(long)]
    limit: Option<u64>,
}

#[derive(Args, Debug)]
struct HistoryArgs {
    /// Store directory, `wal/` directory or segment file.
    path: PathBuf,
    /// Collection of the document.
    collection: String,
    /// Key of the document.
    key: String,
    /// Show what changed between consecutive versions instead of whole values.
    #[arg(long)]
    diff: bool,
}

/// Options of `follow`.
#[derive(Args, Debug)]
pub struct FollowArgs {
    /// Store directory or `wal/` directory.
    pub path: PathBuf,
    /// Print the records already in the log first.
    #[arg(long)]
    pub from_start: bool,
    /// How often to look for newly durable records, in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub poll_ms: u64,
    /// Exit (code 0) after this long without a new record (for scripts and tests).
    #[arg(long)]
    pub exit_after_idle_ms: Option<u64>,
    /// Exit (code 0) after printing this many records.
    #[arg(long)]
    pub max_records: Option<u64>,
    #[command(flatten)]
    pub filters: Filters,
}

/// Options of `salvage`.
#[derive(Args, Debug)]
pub struct SalvageArgs {
    /// Damaged store directory, `wal/` directory or segment file (only read).
    pub path: PathBuf,
    /// Directory for the new store; must not exist or be empty.
    #[arg(long)]
    pub out: PathBuf,
    /// Also keep the records found after a hole in the log (damaged bytes or missing segments
    /// whose LSNs never come back). By default salvage keeps only the prefix the log actually
    /// passed through: records after a hole may be writes no fsync covered, and applying them
    /// over the hole makes a state the store never had.
    #[arg(long)]
    pub keep_all_readable: bool,
}

fn run(cli: Cli) -> Result<i32, Fail> {
    let mut out = Out::new(cli.json);
    let code = match cli.command {
        None => match cli.path {
            Some(path) => commands::summary(&mut out, &path)?,
            None => return Err(Fail::Usage("a store path is required (see --help)".into())),
        },
        Some(Command::Summary(a)) => commands::summary(&mut out, &a.path)?,
        Some(Command::Verify(a)) => commands::verify(&mut out, &a.path)?,
        Some(Command::Dump(a)) => commands::dump(&mut out, &a.path, &a.filters, a.oneline)?,
        Some(Command::History(a)) => {
            history::history(&mut out, &a.path, &a.collection, &a.key, a.diff)?
        }
        Some(Command::Get(a)) => current::get(&mut out, &a.path, &a.collection, &a.key)?,
        Some(Command::Scan(a)) => {
            let range = current::ScanRange {
                collection: a.collection.as_deref(),
                prefix: a.prefix.as_deref(),
                from: a.from.as_deref(),
                limit: a.limit,
            };
            current::scan(&mut out, &a.path, &range)?
        }
        Some(Command::Stats(a)) => stats::stats(&mut out, &a.path)?,
        Some(Command::Follow(a)) => follow::follow(&mut out, &a)?,
        Some(Command::Salvage(a)) => salvage::salvage(&mut out, &a)?,
    };
    out.flush()?;
    Ok(code)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if e.use_stderr() => {
            let _ = e.print();
            return ExitCode::from(out::EXIT_USAGE);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let json = cli.json;
    match run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(fail) => fail.report(json),
    }
}
