//! Finding a server binary, and the skip-or-fail rule every server helper shares.
//!
//! A test that needs a server which is not installed is *skipped* — it prints one line and
//! returns — unless the server's `KEEL_REQUIRE_<SERVER>=1` variable is set, which turns
//! the skip into a failure (CI sets it). The skip line is written straight to the
//! process's stderr, not through `eprintln!`: the test harness captures `eprintln!` output
//! of passing tests, which made every skip invisible in a plain `cargo test`.

use std::io::Write as _;
use std::path::PathBuf;

/// Folders searched after `PATH`: Debian keeps server binaries in sbin folders, which an
/// unprivileged user's `PATH` often lacks.
const SYSTEM_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// Where a binary was looked for, and whether it was found.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// The binary's file name, e.g. `redis-server`.
    pub binary: String,
    /// Every path that was tried, in order.
    pub tried: Vec<PathBuf>,
    /// The first of them that is a file.
    pub found: Option<PathBuf>,
    /// The override variable, when it was set (and so the only place looked at).
    pub overridden_by: Option<String>,
}

impl Lookup {
    /// Looks for `binary`: the path in the environment variable `override_env` if it is
    /// set (and nothing else), then every folder of `PATH`, then `extra_dirs`, then the
    /// system's sbin and bin folders.
    pub fn find(binary: &str, override_env: &str, extra_dirs: &[PathBuf]) -> Self {
        let overridden = std::env::var_os(override_env).is_some();
        let tried: Vec<PathBuf> = match std::env::var_os(override_env) {
            Some(p) => vec![PathBuf::from(p)],
            None => {
                let path = std::env::var_os("PATH").unwrap_or_default();
                let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
                dirs.extend(extra_dirs.iter().cloned());
                dirs.extend(SYSTEM_DIRS.iter().map(PathBuf::from));
                let mut seen = std::collections::HashSet::new();
                dirs.into_iter()
                    .filter(|d| seen.insert(d.clone()))
                    .map(|d| d.join(binary))
                    .collect()
            }
        };
        let found = tried.iter().find(|p| p.is_file()).cloned();
        Self {
            binary: binary.to_owned(),
            tried,
            found,
            overridden_by: overridden.then(|| override_env.to_owned()),
        }
    }

    /// "redis-server not found (looked in /usr/bin, /usr/sbin, …)".
    pub fn not_found(&self) -> String {
        if let Some(var) = &self.overridden_by {
            let path = self.tried.first().map(|p| p.display().to_string());
            return format!(
                "{} not found (looked in {} only, as ${var} says)",
                self.binary,
                path.unwrap_or_default()
            );
        }
        let dirs: Vec<String> = self
            .tried
            .iter()
            .map(|p| {
                p.parent()
                    .filter(|_| p.file_name() == Some(self.binary.as_ref()))
                    .unwrap_or(p)
                    .display()
                    .to_string()
            })
            .collect();
        format!("{} not found (looked in {})", self.binary, dirs.join(", "))
    }
}

/// Whether `require_env` (e.g. `KEEL_REQUIRE_REDIS`) is set to `1` or `true`.
pub fn required(require_env: &str) -> bool {
    std::env::var(require_env).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// The shared rule for a test named `test` whose server binary is missing: panic when
/// `required` (naming `require_env` and `install_hint`), otherwise print one visible skip
/// line that says where the binary was looked for.
///
/// # Panics
/// When `required` is true.
pub fn skip_or_fail(
    test: &str,
    lookup: &Lookup,
    require_env: &str,
    required: bool,
    install_hint: &str,
) {
    if required {
        panic!(
            "{test}: {require_env}=1 but {} (install it, e.g. `{install_hint}`)",
            lookup.not_found()
        );
    }
    print_skip(&format!(
        "skipped {test}: {} — install it to run this test; {require_env}=1 makes this a failure",
        lookup.not_found()
    ));
}

/// Writes `line` to the real stderr, past the test harness's output capture.
pub fn print_skip(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_names_every_folder_it_looked_in() {
        let lookup = Lookup::find(
            "keel-no-such-server",
            "KEEL_TESTKIT_NO_SUCH_OVERRIDE",
            &[PathBuf::from("/opt/keel-extra")],
        );
        assert!(lookup.found.is_none());
        let msg = lookup.not_found();
        assert!(
            msg.starts_with("keel-no-such-server not found (looked in "),
            "{msg}"
        );
        for dir in [
            "/opt/keel-extra",
            "/usr/sbin",
            "/usr/bin",
            "/usr/local/sbin",
        ] {
            assert!(msg.contains(dir), "{msg} lacks {dir}");
        }
    }

    #[test]
    fn an_existing_binary_is_found_in_the_system_folders() {
        let lookup = Lookup::find("sh", "KEEL_TESTKIT_NO_SUCH_OVERRIDE", &[]);
        assert!(lookup.found.is_some_and(|p| p.ends_with("sh")));
    }

    #[test]
    #[should_panic(expected = "KEEL_REQUIRE_X=1 but keel-no-such-server not found")]
    fn a_required_server_that_is_missing_fails() {
        let lookup = Lookup::find("keel-no-such-server", "KEEL_TESTKIT_NO_SUCH_OVERRIDE", &[]);
        skip_or_fail("t", &lookup, "KEEL_REQUIRE_X", true, "apt-get install x");
    }
}
