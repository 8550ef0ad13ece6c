//! `keel-stream-broker --listen 127.0.0.1:19092 --data DIR [--auto-create-topics]`: the
//! broker as its own process (the integration tests start and `kill -9` it).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use keel_stream_broker::Broker;

const USAGE: &str =
    "usage: keel-stream-broker [--listen ADDR] --data DIR [--auto-create-topics] [--partitions N]";

fn main() -> ExitCode {
    keel_stream_broker::log_to_stderr();
    let mut listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 19092));
    let mut data: Option<PathBuf> = None;
    let mut auto = false;
    let mut partitions = 1u32;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let parsed = match a.as_str() {
            "--listen" => args.next().and_then(|v| v.parse().ok()).map(|v| listen = v),
            "--data" => args.next().map(|v| data = Some(PathBuf::from(v))),
            "--auto-create-topics" => {
                auto = true;
                Some(())
            }
            "--partitions" => args
                .next()
                .and_then(|v| v.parse().ok())
                .map(|v| partitions = v),
            _ => None,
        };
        if parsed.is_none() {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    }
    let Some(data) = data else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("keel-stream-broker: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let broker = Broker::builder()
            .listen(listen)
            .data_dir(data)
            .auto_create_topics(auto)
            .default_partitions(partitions)
            .build();
        let handle = match broker {
            Ok(b) => b.start().await,
            Err(e) => {
                eprintln!(
                    "keel-stream-broker: {e}: {}",
                    std::error::Error::source(&e)
                        .map(|s| s.to_string())
                        .unwrap_or_default()
                );
                return ExitCode::FAILURE;
            }
        };
        let handle = match handle {
            Ok(h) => h,
            Err(e) => {
                eprintln!("keel-stream-broker: {e}");
                return ExitCode::FAILURE;
            }
        };
        // The tests read this line to learn the port.
        println!("listening on {}", handle.local_addr());
        let _ = tokio::signal::ctrl_c().await;
        handle.shutdown().await;
        ExitCode::SUCCESS
    })
}
