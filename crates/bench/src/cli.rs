//! The command-line arguments, shared by `keel-bench` and `keel bench`, and the checks
//! both binaries run before any work starts.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::{Config, systems};

/// `<system> [--quick] [--threads 1,2] [--scenario REGEX] [--json PATH]`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The system to benchmark (one of this build's systems, or `all`).
    #[arg(value_parser = system_name)]
    pub system: String,
    /// Fewer, shorter rounds: about a minute per system.
    #[arg(long)]
    pub quick: bool,
    /// Thread counts for multi-threaded scenarios.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub threads: Vec<usize>,
    /// Run only the scenarios whose name matches this regular expression
    /// (e.g. `--scenario 'deny|zipf'`).
    #[arg(long, value_name = "REGEX")]
    pub scenario: Option<regex_lite::Regex>,
    /// Also write the results as JSON to this path.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Accepts a system this build includes, or `all`; the error lists them.
fn system_name(name: &str) -> Result<String, String> {
    if name == "all" || systems::find(name).is_some() {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "unknown system; this build has: {}, all",
            systems::names().join(", ")
        ))
    }
}

/// Runs the benchmark the arguments describe, prints its tables and writes the JSON.
///
/// # Errors
/// A thread count of 0, an unwritable JSON path (checked before anything runs), a failing
/// benchmark.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.threads.contains(&0) {
        anyhow::bail!("--threads: thread counts must be at least 1");
    }
    if let Some(path) = &args.json {
        check_writable_file(path).context("--json")?;
    }
    let cfg = Config::new(args.quick, args.threads).with_scenario(args.scenario);
    let report = systems::run_and_print(&args.system, &cfg)?;
    if let Some(path) = args.json {
        report
            .write_json(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Fails now, naming the path, if `path` cannot be created or written — so a typo in an
/// output path costs nothing instead of a whole run. Creates missing parent folders.
///
/// # Errors
/// The path and the operating system's reason.
pub fn check_writable_file(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create folder {}", dir.display()))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Fails now, naming the folder, if files cannot be written into `dir` (created if missing).
///
/// # Errors
/// The folder and the operating system's reason.
pub fn check_writable_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create folder {}", dir.display()))?;
    let probe = dir.join(".keel-write-check");
    std::fs::write(&probe, b"")
        .with_context(|| format!("cannot write into folder {}", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Prints an error the way both binaries do — `NAME: error: cause` on one line, no
/// backtrace — and returns exit code 2 (usage or environment problem, as clap does).
pub fn report_error(program: &str, error: &anyhow::Error) -> std::process::ExitCode {
    eprintln!("{program}: {error:#}");
    std::process::ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unwritable_json_path_is_named_before_anything_runs() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        // A folder cannot be created under a regular file.
        let bad = blocker.join("sub").join("out.json");
        let err = format!("{:#}", check_writable_file(&bad).unwrap_err());
        assert!(
            err.contains(&blocker.join("sub").display().to_string()),
            "{err}"
        );
        let ok = dir.path().join("new").join("out.json");
        check_writable_file(&ok).unwrap();
        assert!(ok.exists());
    }

    #[test]
    fn an_unwritable_folder_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let err = format!(
            "{:#}",
            check_writable_dir(&blocker.join("out")).unwrap_err()
        );
        assert!(err.contains("out"), "{err}");
        check_writable_dir(&dir.path().join("report")).unwrap();
    }

    #[test]
    fn system_names_come_from_the_systems_list() {
        for name in systems::names() {
            assert_eq!(system_name(name).as_deref(), Ok(name));
        }
        assert!(system_name("all").is_ok());
        let err = system_name("ratelimt").unwrap_err();
        assert!(err.contains("this build has"), "{err}");
    }
}
