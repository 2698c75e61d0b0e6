//! Building one of the workspace's binaries for a command that runs it (the demo, the benchmark, the
//! attacker), with the cargo that runs xtask, and finding it in the target directory.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// What to build.
pub(crate) struct Binary {
    /// The package holding it.
    pub(crate) package: &'static str,
    /// `--bin NAME` or `--example NAME`.
    pub(crate) kind: &'static str,
    pub(crate) name: &'static str,
    /// Optimised (`--release`) or not.
    pub(crate) release: bool,
}

/// Builds `binary` quietly and returns its path.
pub(crate) fn build(binary: &Binary) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command.args(["build", "--quiet", "--package", binary.package, binary.kind, binary.name]);
    if binary.release {
        command.arg("--release");
    }
    let status = command.status().with_context(|| format!("building {}", binary.name))?;
    if !status.success() {
        bail!("building {} failed ({status})", binary.name);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| crate::codegen::workspace_root().join("target"), PathBuf::from);
    let profile = target.join(if binary.release { "release" } else { "debug" });
    Ok(match binary.kind {
        "--example" => profile.join("examples").join(binary.name),
        _ => profile.join(binary.name),
    })
}
