//! The `junction` binary as a process: start, listen, SIGTERM, exit codes.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_junction");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_config(
    dir: &std::path::Path,
    amqp: u16,
    stomp: u16,
    mqtt: u16,
    extra: &str,
) -> std::path::PathBuf {
    let path = dir.join("junction.toml");
    let text = format!(
        "data_dir = \"{}\"\n{extra}\n[listeners.amqp]\naddress = \"127.0.0.1\"\nport = {amqp}\n[listeners.stomp]\naddress = \"127.0.0.1\"\nport = {stomp}\n[listeners.mqtt]\naddress = \"127.0.0.1\"\nport = {mqtt}\n[listeners.stomp_ws]\nenabled = false\n[listeners.mqtt_ws]\nenabled = false\n[listeners.management]\nenabled = false\n[listeners.prometheus]\nenabled = false\n",
        dir.join("data").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let mut status = None;
    wait_until("the process to exit", || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    status.unwrap()
}

/// Kills the child if a test fails before it exits.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn starts_listens_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let ports = (free_port(), free_port(), free_port());
    let cfg = write_config(dir.path(), ports.0, ports.1, ports.2, "");
    let child = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Reap(child);
    for port in [ports.0, ports.1, ports.2] {
        wait_until("the listener", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }
    assert!(dir.path().join("data").is_dir(), "data directory created");
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.0.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let status = wait_exit(&mut child.0);
    assert_eq!(status.code(), Some(0), "clean exit on SIGTERM");
    let mut log = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(log.contains("shut down"), "{log}");
}

#[test]
fn unknown_config_key_is_named_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        free_port(),
        free_port(),
        free_port(),
        "colour = \"blue\"",
    );
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("colour"), "{err}");
    let bad_value = dir.path().join("bad.toml");
    std::fs::write(&bad_value, "[limits]\nheartbeat = \"often\"\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&bad_value)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("heartbeat"), "{err}");
}

#[test]
fn port_in_use_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let cfg = write_config(dir.path(), port, free_port(), free_port(), "");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("error"))
        .unwrap_or_default();
    assert!(
        line.contains(&port.to_string()) && line.contains("AMQP"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_second_junction_on_the_same_data_directory_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let ports = (free_port(), free_port(), free_port());
    let cfg = write_config(dir.path(), ports.0, ports.1, ports.2, "");
    let first = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first = Reap(first);
    wait_until("the first broker", || {
        TcpStream::connect(("127.0.0.1", ports.0)).is_ok()
    });
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let cfg2 = write_config(&other, free_port(), free_port(), free_port(), "");
    // Same data directory as the first, other ports.
    let text = std::fs::read_to_string(&cfg2).unwrap().replace(
        &other.join("data").display().to_string(),
        &dir.path().join("data").display().to_string(),
    );
    std::fs::write(&cfg2, text).unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&cfg2)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another Junction"), "{err}");
    assert!(
        err.contains(&first.0.id().to_string()),
        "names the holder's pid: {err}"
    );
}
