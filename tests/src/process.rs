//! The real `junction` binary as a child process, for restart and crash tests: started on fixed
//! loopback ports with a data directory that outlives it, stopped with SIGTERM or SIGKILL.

use crate::within;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The ports of one broker, kept across its restarts.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// The AMQP port.
    pub amqp: u16,
    /// The STOMP port.
    pub stomp: u16,
    /// The MQTT port.
    pub mqtt: u16,
    /// The management API's port (`junction ctl` reaches the process there).
    pub management: u16,
}

impl Ports {
    /// Three ports free right now.
    pub fn free() -> Ports {
        let pick = || {
            TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("a free port")
        };
        Ports {
            amqp: pick(),
            stomp: pick(),
            mqtt: pick(),
            management: pick(),
        }
    }
}

/// The `junction` binary, built (once per test process) if needed.
pub fn binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-q", "-p", "junction-gateway", "--bin", "junction"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the junction binary failed");
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> -> target/<profile>/junction
        exe.parent()
            .and_then(Path::parent)
            .map(|d| d.join("junction"))
            .expect("target directory")
    })
    .clone()
}

/// A running `junction` process.
pub struct JunctionProcess {
    child: Child,
    /// Its ports.
    pub ports: Ports,
    /// Its configuration file (`junction ctl --config` finds the node and its credential).
    pub config: PathBuf,
    log: Arc<Mutex<String>>,
}

/// What one run of `junction ctl` did.
#[derive(Debug)]
pub struct CtlRun {
    /// Its exit code.
    pub code: i32,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl JunctionProcess {
    /// Starts `junction` with its data directory in `root/data` and `extra` TOML appended to
    /// the generated configuration; returns once every listener accepts connections.
    pub async fn start(root: &Path, ports: Ports, extra: &str) -> JunctionProcess {
        Self::start_with_args(root, ports, extra, &[]).await
    }

    /// As [`Self::start`], with more command-line arguments for `junction`.
    pub async fn start_with_args(
        root: &Path,
        ports: Ports,
        extra: &str,
        args: &[&str],
    ) -> JunctionProcess {
        let cfg = root.join("junction.toml");
        let text = format!(
            "data_dir = \"{data}\"\n{extra}\n\
             [listeners.amqp]\naddress = \"127.0.0.1\"\nport = {a}\n\
             [listeners.stomp]\naddress = \"127.0.0.1\"\nport = {s}\n\
             [listeners.mqtt]\naddress = \"127.0.0.1\"\nport = {m}\n\
             [listeners.stomp_ws]\nenabled = false\n[listeners.mqtt_ws]\nenabled = false\n[listeners.management]\naddress = \"127.0.0.1\"\nport = {g}\n[listeners.prometheus]\nenabled = false\n",
            data = root.join("data").display(),
            a = ports.amqp,
            s = ports.stomp,
            m = ports.mqtt,
            g = ports.management,
        );
        std::fs::write(&cfg, text).expect("config written");
        let mut child = Command::new(binary())
            .arg("--config")
            .arg(&cfg)
            .arg("--log-level")
            .arg("info")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("junction starts");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr piped");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap_or_else(|e| e.into_inner());
                l.push_str(&line);
                l.push('\n');
            }
        });
        let mut p = JunctionProcess {
            child,
            ports,
            config: cfg,
            log,
        };
        within(async {
            for port in [ports.amqp, ports.stomp, ports.mqtt, ports.management] {
                while tokio::net::TcpStream::connect(addr(port)).await.is_err() {
                    if let Ok(Some(status)) = p.child.try_wait() {
                        panic!("junction exited with {status}:\n{}", p.log());
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        })
        .await;
        p
    }

    /// Runs `junction ctl ARGS` against this process, as its owner on its machine (the
    /// configuration tells ctl where the API and the local credential are).
    pub async fn ctl(&self, args: &[&str]) -> CtlRun {
        let mut all = vec!["ctl".to_string(), "--config".into()];
        all.push(self.config.display().to_string());
        all.extend(args.iter().map(|a| a.to_string()));
        run_binary(&all).await
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// An AMQP URI as guest.
    pub fn amqp_uri(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.ports.amqp)
    }

    /// The STOMP address.
    pub fn stomp_addr(&self) -> SocketAddr {
        addr(self.ports.stomp)
    }

    /// The MQTT address.
    pub fn mqtt_addr(&self) -> SocketAddr {
        addr(self.ports.mqtt)
    }

    async fn wait(&mut self) -> ExitStatus {
        within(async {
            loop {
                if let Some(s) = self.child.try_wait().expect("wait works") {
                    return s;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
    }

    /// SIGKILL: the crash case.
    pub async fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        self.wait().await;
    }

    /// SIGTERM: a clean shutdown; returns the exit status.
    pub async fn terminate(mut self) -> ExitStatus {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success());
        self.wait().await
    }
}

/// Runs the `junction` binary with `args` to its end (within the test timeout).
pub async fn run_binary(args: &[String]) -> CtlRun {
    let out = within(
        tokio::process::Command::new(binary())
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("junction runs");
    CtlRun {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Drop for JunctionProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
