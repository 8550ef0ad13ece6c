//! kafka-python 2.x against the broker binary, in a virtualenv this test creates (cached
//! under the target directory): a producer with acks=all, then a consumer group of two that
//! splits the partitions and commits; one leaves, the other takes over from the committed
//! offsets without losing or skipping a record (`tests/python/group_takeover.py`).
//! Skips with a visible line when python3/venv/pip are unavailable, unless
//! `KEEL_REQUIRE_KAFKA_PYTHON=1`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{BrokerProcess, run_bounded};
use keel_testkit::Lookup;

const REQUIRE: &str = "KEEL_REQUIRE_KAFKA_PYTHON";

/// The venv's python with kafka-python importable, or why not.
fn venv_python() -> Result<PathBuf, String> {
    let lookup = Lookup::find("python3", "KEEL_PYTHON3", &[]);
    let python = lookup.found.clone().ok_or_else(|| lookup.not_found())?;
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kafka-python-2-venv");
    let vpy = venv.join("bin").join("python");
    let importable = |py: &Path| {
        let mut c = Command::new(py);
        c.args([
            "-c",
            "import kafka, sys; sys.exit(0 if kafka.__version__.startswith('2.') else 1)",
        ]);
        run_bounded(c, None, Duration::from_secs(60)).0
    };
    if vpy.is_file() && importable(&vpy) {
        return Ok(vpy);
    }
    let mut c = Command::new(&python);
    c.args(["-m", "venv", "--clear"]).arg(&venv);
    let (ok, _, err) = run_bounded(c, None, Duration::from_secs(120));
    if !ok {
        return Err(format!("python3 -m venv failed: {}", err.trim()));
    }
    let mut c = Command::new(venv.join("bin").join("pip"));
    c.args([
        "install",
        "-q",
        "--disable-pip-version-check",
        "kafka-python>=2,<3",
    ]);
    let (ok, _, err) = run_bounded(c, None, Duration::from_secs(300));
    if !ok || !importable(&vpy) {
        return Err(format!("pip install kafka-python failed: {}", err.trim()));
    }
    Ok(vpy)
}

#[test]
fn kafka_python_group_of_two_splits_commits_and_takes_over_without_loss() {
    let python = match venv_python() {
        Ok(p) => p,
        Err(why) => {
            assert!(
                !keel_testkit::skip::required(REQUIRE),
                "{REQUIRE}=1 but kafka-python is unavailable: {why}"
            );
            keel_testkit::skip::print_skip(&format!(
                "skipped kafka-python tests: {why} — install python3 with venv and pip to run them; {REQUIRE}=1 makes this a failure"
            ));
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/group_takeover.py");
    let mut c = Command::new(python);
    c.arg(script).arg(broker.addr.to_string());
    let (ok, out, err) = run_bounded(c, None, Duration::from_secs(180));
    assert!(ok, "kafka-python scenario failed:\n{out}\n{err}");
    println!("kafka-python: {}", out.trim());
    let line = out.lines().last().unwrap_or_default();
    assert!(line.contains("\"produced_acks_all\": 4000"), "{line}");
    assert!(line.contains("\"consumed_distinct\": 4000"), "{line}");
}
