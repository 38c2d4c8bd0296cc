//! Proves the Mesos rig fixture against the real Mesos 1.11 rig.

use std::process::Command;
use std::time::Instant;

use serde_json::Value;
use test_support::{MesosRig, RigOptions, require_rig};

/// Set in the child process that checks the skip/fail policy.
const POLICY_CHILD_ENV: &str = "TEST_SUPPORT_POLICY_CHILD";

/// GETs `<endpoint>/master/state` as JSON.
fn master_state(rig: &MesosRig) -> Value {
    ureq::get(format!("{}/master/state", rig.endpoint()))
        .call()
        .expect("GET /master/state")
        .body_mut()
        .read_json()
        .expect("state is JSON")
}

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
fn one_agent_registers_and_stop_ends_the_process() {
    require_rig!();
    let t0 = Instant::now();
    let mut rig =
        MesosRig::start(RigOptions::default().env("MESOS_ROLES", "kafka")).expect("start the rig");
    eprintln!(
        "rig started in {:?} (start.sh {:?}) at {}",
        t0.elapsed(),
        rig.startup_time(),
        rig.endpoint()
    );
    assert!(
        rig.endpoint().starts_with("http://127.0.0.1:"),
        "{}",
        rig.endpoint()
    );
    assert!(rig.log_path().is_file(), "{}", rig.log_path().display());

    let state = master_state(&rig);
    assert_eq!(state["activated_slaves"].as_f64(), Some(1.0), "{state}");
    let agents = state["slaves"].as_array().expect("slaves array");
    assert_eq!(agents.len(), 1);
    assert_eq!(agents[0]["active"], Value::Bool(true));
    assert_eq!(
        state["flags"]["roles"], "kafka",
        "extra MESOS_ flags reach the master"
    );

    let pid = rig.pid();
    assert!(alive(pid));
    let t1 = Instant::now();
    rig.stop().expect("stop");
    eprintln!("rig stopped in {:?}", t1.elapsed());
    assert!(
        !alive(pid),
        "cluster process {pid} still alive after stop()"
    );
    rig.stop().expect("stop is idempotent");
}

#[test]
fn options_reach_agents_and_drop_stops_the_rig() {
    require_rig!();
    let rig = MesosRig::start(
        RigOptions::default()
            .agents(2)
            .resources("cpus:2;mem:2048;disk:1024;ports:[32000-32099]")
            .attributes("rack:r1;zone:z1"),
    )
    .expect("start the rig");
    let state = master_state(&rig);
    assert_eq!(state["activated_slaves"].as_f64(), Some(2.0), "{state}");
    for agent in state["slaves"].as_array().expect("slaves array") {
        assert_eq!(agent["resources"]["cpus"].as_f64(), Some(2.0), "{agent}");
        assert_eq!(agent["resources"]["ports"], "[32000-32099]", "{agent}");
        assert_eq!(agent["attributes"]["rack"], "r1", "{agent}");
        assert_eq!(agent["hostname"], "localhost", "{agent}");
    }
    let pid = rig.pid();
    let work = rig.work_dir().to_path_buf();
    drop(rig);
    assert!(!alive(pid), "cluster process {pid} still alive after drop");
    assert!(!work.exists(), "temp work dir removed after drop");
}

/// Runs only inside the child processes started by `missing_rig_skips_or_fails_in_ci`.
#[test]
fn policy_child() {
    if std::env::var_os(POLICY_CHILD_ENV).is_none() {
        return;
    }
    require_rig!();
    panic!("require_rig! let the test go on although the rig is missing");
}

#[test]
fn missing_rig_skips_or_fails_in_ci() {
    // The policy reads the process environment, so check it in child processes
    // of this test binary rather than by mutating our own environment.
    let run = |ci: &str| {
        Command::new(std::env::current_exe().expect("test binary path"))
            .args(["--exact", "policy_child", "--nocapture", "--test-threads=1"])
            .env(POLICY_CHILD_ENV, "1")
            .env("MESOS_RIG_DIR", "/nonexistent/mesos-rig")
            .env("CI", ci)
            .output()
            .expect("run the test binary")
    };

    let skipped = run("false");
    let stderr = String::from_utf8_lossy(&skipped.stderr);
    assert!(skipped.status.success(), "{stderr}");
    assert!(
        stderr.contains("SKIPPED: real Mesos rig not found at /nonexistent/mesos-rig"),
        "{stderr}"
    );

    let failed = run("true");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&failed.stdout),
        String::from_utf8_lossy(&failed.stderr)
    );
    assert!(!failed.status.success(), "CI=true must fail: {out}");
    assert!(out.contains("CI=true"), "{out}");
}
