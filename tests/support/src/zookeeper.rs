//! A real Apache ZooKeeper standalone server on a free 127.0.0.1 port.
//!
//! The distribution comes from `packaging/service-tarball.sh zookeeper`, which
//! prints the path of a `zookeeper-<ver>.tar.gz` (layout `zookeeper-<ver>/lib/*.jar`,
//! `bin/`, `conf/`). It is extracted once into [`crate::cache_dir`]; each server
//! gets its own temp dir holding `zoo.cfg`, the data dir and the log.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::ports::{self, LOOPBACK};
use crate::{Error, FileLock, Result, proc, tail, tail_str, wait};

/// The script (relative to the workspace root) that provides service tarballs.
pub const TARBALL_SCRIPT: &str = "packaging/service-tarball.sh";

/// ZooKeeper's main class for standalone and quorum servers.
const MAIN_CLASS: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

/// Marker written into an extracted distribution once extraction completed.
const EXTRACTED_MARKER: &str = ".test-support-extracted";

/// Attempts at starting the server when the chosen port turns out to be taken.
const START_ATTEMPTS: u32 = 3;

/// Timeout of one four-letter-word exchange.
const FLW_TIMEOUT: Duration = Duration::from_secs(2);

/// Grace period between SIGTERM and SIGKILL when stopping.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// INFO-level console logging; logback's default would be DEBUG (very noisy).
const LOGBACK_XML: &str = r#"<configuration>
  <appender name="CONSOLE" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="CONSOLE"/></root>
</configuration>
"#;

/// How to start a server. Build with [`ZkOptions::default`] and the setters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkOptions {
    /// ZooKeeper's `tickTime` in milliseconds (session timeouts are 2–20 ticks).
    pub tick_time_ms: u32,
    /// Use this distribution tarball instead of asking [`TARBALL_SCRIPT`].
    pub tarball: Option<PathBuf>,
    /// How long the server may take to answer `imok` and serve requests.
    pub startup_timeout: Duration,
    /// JVM maximum heap in MiB.
    pub heap_mb: u32,
}

impl Default for ZkOptions {
    fn default() -> Self {
        ZkOptions {
            tick_time_ms: 2000,
            tarball: None,
            startup_timeout: Duration::from_secs(60),
            heap_mb: 256,
        }
    }
}

impl ZkOptions {
    /// Sets `tickTime` (lower it to test session expiry quickly).
    pub fn tick_time_ms(mut self, ms: u32) -> Self {
        self.tick_time_ms = ms;
        self
    }

    /// Uses the given distribution tarball instead of the packaging script.
    pub fn tarball(mut self, path: impl Into<PathBuf>) -> Self {
        self.tarball = Some(path.into());
        self
    }

    /// Sets how long start-up may take.
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }
}

/// A running ZooKeeper server; killed (whole process group) when dropped.
#[derive(Debug)]
pub struct ZkServer {
    child: Child,
    port: u16,
    log: PathBuf,
    data_dir: PathBuf,
    startup: Duration,
    running: bool,
    // Holds zoo.cfg, data and log; removed on drop unless a test is panicking.
    dir: Option<TempDir>,
}

impl ZkServer {
    /// Starts a standalone server with default options and waits until it serves.
    pub fn start() -> Result<ZkServer> {
        ZkServer::start_with(ZkOptions::default())
    }

    /// Starts a standalone server with `opts` and waits until it answers `imok` and serves.
    pub fn start_with(opts: ZkOptions) -> Result<ZkServer> {
        if opts.tick_time_ms == 0 || opts.heap_mb == 0 {
            return Err(Error::InvalidOption(
                "tick_time_ms and heap_mb must be positive".into(),
            ));
        }
        let tarball = match &opts.tarball {
            Some(path) => path.clone(),
            None => tarball()?,
        };
        let home = distribution(&tarball)?;
        let mut attempt = 1;
        loop {
            let port = ports::free_port()?;
            match start_once(&home, port, &opts) {
                Err(Error::ExitedEarly { log_tail, .. })
                    if attempt < START_ATTEMPTS && log_tail.contains("Address already in use") =>
                {
                    // free_port() released the port; another process may have taken it.
                    tracing::warn!(port, attempt, "zookeeper could not bind; retrying");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// The client connect string, `127.0.0.1:PORT`.
    pub fn connect_string(&self) -> String {
        format!("{LOOPBACK}:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The client address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((LOOPBACK, self.port))
    }

    /// The PID of the JVM (it leads its own process group).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's log (stdout and stderr of the JVM).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The server's `dataDir`.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// How long start-up took until the server was serving.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// Sends a four-letter-word command (`ruok`, `srvr`, `mntr`, ...) and returns the reply.
    pub fn four_letter_word(&self, cmd: &str) -> Result<String> {
        four_letter_word(self.addr(), cmd)
    }

    /// Kills the server's process group (SIGTERM, then SIGKILL) and reaps it. Idempotent.
    pub fn stop(&mut self) -> Result<()> {
        if !self.running {
            return Ok(());
        }
        self.running = false;
        proc::terminate_group(&mut self.child, STOP_GRACE)?;
        tracing::info!(pid = self.child.id(), port = self.port, "zookeeper stopped");
        Ok(())
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::error!(pid = self.child.id(), error = %e, "could not stop zookeeper");
        }
        if std::thread::panicking() {
            if let Some(dir) = self.dir.take() {
                // Keep the log and data of a failed test for inspection.
                let kept = dir.keep();
                tracing::warn!(dir = %kept.display(), "kept zookeeper files");
            }
        }
    }
}

/// Sends a four-letter-word command to the server at `addr` and returns its reply.
pub fn four_letter_word(addr: SocketAddr, cmd: &str) -> Result<String> {
    let what = || format!("four-letter word {cmd:?} to {addr}");
    let mut stream = TcpStream::connect_timeout(&addr, FLW_TIMEOUT).map_err(Error::io(what()))?;
    stream
        .set_read_timeout(Some(FLW_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(FLW_TIMEOUT)))
        .and_then(|()| stream.write_all(cmd.as_bytes()))
        .map_err(Error::io(what()))?;
    let mut reply = String::new();
    // The server closes the connection after replying.
    stream
        .read_to_string(&mut reply)
        .map_err(Error::io(what()))?;
    Ok(reply)
}

/// True when the server at `addr` answers `ruok` with `imok` *and* serves requests.
///
/// `imok` only means the process is up: right after start-up ZooKeeper still
/// answers `srvr` with "not currently serving requests" and drops client sessions,
/// so readiness also requires `srvr` to report a `Mode:`.
pub fn is_serving(addr: SocketAddr) -> bool {
    let ok = |cmd: &str, expect: &dyn Fn(&str) -> bool| {
        four_letter_word(addr, cmd).is_ok_and(|reply| expect(&reply))
    };
    ok("ruok", &|r| r.trim() == "imok") && ok("srvr", &|r| r.contains("Mode:"))
}

/// The ZooKeeper distribution tarball from [`TARBALL_SCRIPT`].
pub fn tarball() -> Result<PathBuf> {
    crate::packaging::service_tarball("zookeeper")
}

/// Extracts `tarball` once into `<cache_dir>/zookeeper/<name>` and returns that
/// directory (it holds `lib/`, `bin/`, `conf/`). Re-extracts when the tarball changed.
pub fn distribution(tarball: &Path) -> Result<PathBuf> {
    let meta =
        std::fs::metadata(tarball).map_err(Error::io(format!("stat {}", tarball.display())))?;
    let name = tarball
        .file_name()
        .and_then(|n| n.to_str())
        .map(|n| {
            n.trim_end_matches(".tar.gz")
                .trim_end_matches(".tgz")
                .to_owned()
        })
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Error::InvalidOption(format!("bad tarball name {}", tarball.display())))?;
    let identity = format!(
        "{} size={} mtime={:?}\n",
        tarball.display(),
        meta.len(),
        meta.modified().ok()
    );

    let base = crate::cache_dir().join("zookeeper");
    let home = base.join(&name);
    let _lock = FileLock::acquire(&base.join(".lock"))?;
    let marker = home.join(EXTRACTED_MARKER);
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(identity.as_str()) {
        return Ok(home);
    }

    tracing::info!(tarball = %tarball.display(), into = %home.display(), "extracting zookeeper");
    let tmp = tempfile::Builder::new()
        .prefix(".extract-")
        .tempdir_in(&base)
        .map_err(Error::io(format!(
            "create a temp dir in {}",
            base.display()
        )))?;
    let program = format!("tar -xzf {}", tarball.display());
    let out = Command::new("tar")
        .arg("-xzf")
        .arg(tarball)
        .arg("-C")
        .arg(tmp.path())
        .stdin(Stdio::null())
        .output()
        .map_err(Error::spawn(program.clone()))?;
    if !out.status.success() {
        return Err(Error::CommandFailed {
            program,
            status: out.status,
            output: tail_str(&String::from_utf8_lossy(&out.stderr), 20),
        });
    }
    // The tarball holds one top-level `zookeeper-<ver>/` folder with `lib/` in it.
    let top = std::fs::read_dir(tmp.path())
        .map_err(Error::io(format!("list {}", tmp.path().display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.join("lib").is_dir())
        .ok_or_else(|| Error::BadOutput {
            program: program.clone(),
            detail: "no top-level folder with lib/ in the tarball".into(),
            output: String::new(),
        })?;
    if home.exists() {
        std::fs::remove_dir_all(&home).map_err(Error::io(format!("remove {}", home.display())))?;
    }
    std::fs::rename(&top, &home).map_err(Error::io(format!("move into {}", home.display())))?;
    std::fs::write(&marker, identity).map_err(Error::io(format!("write {}", marker.display())))?;
    Ok(home)
}

/// The `java` to run: `$JAVA_HOME/bin/java` when present, else `java` from `PATH`.
fn java() -> PathBuf {
    std::env::var_os("JAVA_HOME")
        .map(|h| PathBuf::from(h).join("bin/java"))
        .filter(|j| j.is_file())
        .unwrap_or_else(|| PathBuf::from("java"))
}

/// One start attempt on `port`.
fn start_once(home: &Path, port: u16, opts: &ZkOptions) -> Result<ZkServer> {
    let dir = tempfile::Builder::new()
        .prefix("zookeeper-")
        .tempdir()
        .map_err(Error::io("create a temp dir for zookeeper"))?;
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir)
        .map_err(Error::io(format!("create {}", data_dir.display())))?;
    let cfg = dir.path().join("zoo.cfg");
    let cfg_text = format!(
        "tickTime={tick}\ninitLimit=10\nsyncLimit=5\ndataDir={data}\nclientPort={port}\n\
         clientPortAddress=127.0.0.1\nmaxClientCnxns=0\nadmin.enableServer=false\n\
         4lw.commands.whitelist=*\n",
        tick = opts.tick_time_ms,
        data = data_dir.display(),
    );
    std::fs::write(&cfg, cfg_text).map_err(Error::io(format!("write {}", cfg.display())))?;
    let logback = dir.path().join("logback.xml");
    std::fs::write(&logback, LOGBACK_XML)
        .map_err(Error::io(format!("write {}", logback.display())))?;
    let log = dir.path().join("zookeeper.log");
    let log_file = File::create(&log).map_err(Error::io(format!("create {}", log.display())))?;
    let log_err = log_file
        .try_clone()
        .map_err(Error::io(format!("reopen {}", log.display())))?;

    let java = java();
    let mut cmd = Command::new(&java);
    cmd.arg(format!("-Xmx{}m", opts.heap_mb))
        // Tests want a fast JVM start on small machines, not peak throughput.
        .args(["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
        .arg("-Djava.net.preferIPv4Stack=true")
        .arg("-Dzookeeper.admin.enableServer=false")
        .arg("-Dzookeeper.4lw.commands.whitelist=*")
        .arg(format!("-Dzookeeper.log.dir={}", dir.path().display()))
        .arg(format!("-Dlogback.configurationFile={}", logback.display()))
        .arg("-cp")
        .arg(format!("{}/lib/*", home.display()))
        .arg(MAIN_CLASS)
        .arg(&cfg)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        // Own process group, so stop() can signal the JVM and anything it forks.
        .process_group(0);
    let started = Instant::now();
    let child = cmd
        .spawn()
        .map_err(Error::spawn(format!("{} {MAIN_CLASS}", java.display())))?;
    let mut server = ZkServer {
        child,
        port,
        log,
        data_dir,
        startup: Duration::ZERO,
        running: true,
        dir: Some(dir),
    };

    // Poll until it serves, noticing an early exit instead of waiting out the
    // deadline: the probe yields `Some(None)` when ready, `Some(Some(status))` on exit.
    let outcome = wait::until(
        &format!("zookeeper on port {port} to answer imok and serve"),
        opts.startup_timeout,
        || {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Some(Some(status));
            }
            is_serving(server.addr()).then_some(None)
        },
    );
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(Error::Timeout { waited, .. }) => {
            // Dropping the server kills it; keep its log in the error first.
            return Err(Error::NotReady {
                what: format!("zookeeper on port {port}"),
                waited,
                log_tail: tail(&server.log, 30),
            });
        }
        Err(e) => return Err(e),
    };
    if let Some(status) = outcome {
        server.running = false;
        return Err(Error::ExitedEarly {
            what: format!("zookeeper on port {port}"),
            status,
            log_tail: tail(&server.log, 30),
        });
    }
    server.startup = started.elapsed();
    tracing::info!(
        pid = server.child.id(),
        port,
        startup_ms = server.startup.as_millis() as u64,
        "zookeeper started"
    );
    Ok(server)
}
