//! tcprules: compile rules on standard input into a cdb, atomically.
#![forbid(unsafe_code)]

use std::io::Read;
use std::path::Path;

use rgcore::diag::{describe_io, Failure};

/// Read rules from `input` and replace `cdb` through `tmp`. On any error
/// the old cdb stays; a parse error is permanent (exit 100).
pub fn run(input: &mut dyn Read, cdb: &Path, tmp: &Path) -> Result<usize, Failure> {
    let mut text = Vec::new();
    input
        .read_to_end(&mut text)
        .map_err(|e| Failure::io("read input", &e))?;
    let records = rgrules::compile(&text).map_err(|e| Failure::perm(e.to_string()))?;
    let tmp_name = tmp.display().to_string();
    let mut maker = rgcdb::AtomicMaker::create(cdb, Some(tmp))
        .map_err(|e| Failure::io(&format!("create {tmp_name}"), &e))?;
    let write_err = |e: std::io::Error| Failure::io(&format!("write to {tmp_name}"), &e);
    for (k, d) in &records {
        maker.add(k, d).map_err(write_err)?;
    }
    maker.commit().map_err(|e| {
        Failure::temp(format!(
            "unable to move {tmp_name} to {}: {}",
            cdb.display(),
            describe_io(&e)
        ))
    })?;
    Ok(records.len())
}
