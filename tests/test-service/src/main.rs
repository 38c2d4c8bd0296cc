//! A tiny stateful service for end-to-end tests of the shared scheduler.
//!
//! `test-service <data-dir> <[host:]port> [--fail]` appends a line to
//! `<data-dir>/starts` (so a test can see that data survives a relaunch),
//! then listens on `host:port` (host 127.0.0.1 by default) and answers every connection with
//! `<node> <number of starts>\n`. With `--fail` it exits with status 3 at once,
//! writing a reason to stderr: a service that crashes at start.
//! It stops on SIGTERM like any well-behaved service (the default action).

use std::{
    fs::OpenOptions,
    io::{BufRead, BufReader, Write},
    net::TcpListener,
    path::PathBuf,
    process::ExitCode,
};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(data), Some(port)) = (args.first(), args.get(1)) else {
        eprintln!("usage: test-service <data-dir> <[host:]port> [--fail]");
        return ExitCode::from(2);
    };
    if args.iter().any(|a| a == "--fail") {
        eprintln!("test-service: refusing to start (--fail given)");
        return ExitCode::from(3);
    }
    let node = std::env::var("NODE_ID").unwrap_or_else(|_| "?".into());
    let data = PathBuf::from(data);
    if let Err(error) = std::fs::create_dir_all(&data) {
        eprintln!("test-service: cannot create {}: {error}", data.display());
        return ExitCode::from(1);
    }
    let starts_file = data.join("starts");
    let appended = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&starts_file)
        .and_then(|mut f| writeln!(f, "start"));
    if let Err(error) = appended {
        eprintln!(
            "test-service: cannot write {}: {error}",
            starts_file.display()
        );
        return ExitCode::from(1);
    }
    let address = if port.contains(':') {
        port.clone()
    } else {
        format!("127.0.0.1:{port}")
    };
    let listener = match TcpListener::bind(&address) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("test-service: cannot listen on {address}: {error}");
            return ExitCode::from(1);
        }
    };
    println!("test-service {node} listening on {address}");
    for stream in listener.incoming().flatten() {
        let starts = std::fs::File::open(&starts_file)
            .map(|f| BufReader::new(f).lines().count())
            .unwrap_or(0);
        let mut stream = stream;
        let _ = writeln!(stream, "{node} {starts}");
    }
    ExitCode::SUCCESS
}
