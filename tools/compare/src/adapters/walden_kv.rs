//! walden placeholder until the store lands on main (built without the
//! `walden` feature).

use std::path::Path;

use anyhow::{bail, Result};

use crate::kv::Kv;

/// Whether this build includes the walden adapter.
pub const AVAILABLE: bool = false;

/// Always fails: this build has no walden adapter.
pub fn open(_dir: &Path, _immediate: bool) -> Result<Box<dyn Kv>> {
    bail!("built without walden")
}
