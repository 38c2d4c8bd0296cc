//! Proves the ZooKeeper fixture against a real ZooKeeper server.

use std::time::Instant;

use test_support::ZkServer;

/// True while `/proc/<pid>` shows a live (non-zombie) process.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s
                .rsplit_once(')')
                .and_then(|(_, r)| r.trim_start().chars().next());
            !matches!(state, Some('Z' | 'X'))
        })
        .unwrap_or(false)
}

#[test]
fn zookeeper_answers_ruok_and_stops() {
    let t0 = Instant::now();
    let mut zk = ZkServer::start().expect("start zookeeper");
    eprintln!(
        "zookeeper ready in {:?} (JVM until serving {:?}) at {}",
        t0.elapsed(),
        zk.startup_time(),
        zk.connect_string()
    );
    assert_eq!(zk.connect_string(), format!("127.0.0.1:{}", zk.port()));
    assert_eq!(zk.four_letter_word("ruok").expect("ruok"), "imok");
    let srvr = zk.four_letter_word("srvr").expect("srvr");
    assert!(srvr.contains("Mode: standalone"), "{srvr}");

    let pid = zk.pid();
    assert!(alive(pid));
    zk.stop().expect("stop");
    assert!(!alive(pid), "zookeeper {pid} still alive after stop()");
    assert!(
        zk.four_letter_word("ruok").is_err(),
        "nothing listens after stop()"
    );
}
