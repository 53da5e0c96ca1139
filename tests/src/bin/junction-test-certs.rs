//! Writes the test PKI of `junction_tests::certificates` into a directory, for the interop
//! tests (pika, paho-mqtt, stomp.py) that connect over TLS:
//! `junction-test-certs <dir> [server-cn]`.

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: junction-test-certs <dir> [server-cn]");
        std::process::exit(2);
    };
    let cn = args
        .next()
        .unwrap_or_else(|| "junction-test-server".to_string());
    let pki = junction_tests::certificates::TestPki::write(std::path::Path::new(&dir), &cn);
    println!("{}", pki.dir.display());
}
