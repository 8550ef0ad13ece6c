//! A minimal stderr logger for the binaries (`keel stream broker`, `keel-stream-broker`);
//! a service embedding the broker installs its own `log` implementation instead.

struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!("[{}] {}", r.level(), r.args());
        }
    }
    fn flush(&self) {}
}

/// Sends the broker's log lines (info and above) to stderr; a no-op when a logger is
/// already installed.
pub fn log_to_stderr() {
    if log::set_logger(&StderrLogger).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}
