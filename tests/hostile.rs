//! Senders who hold connections open: slow or silent senders are cut off at the header deadline
//! and never starve the platforms' deliveries; oversized request heads get a 431.

mod support;

use std::time::Duration;

use rollcall::http::listener::ConnectionLimits;
use support::{answer, spawn_app_with, AppOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SLOW_SENDERS: usize = 400;
const SILENT_SENDERS: usize = 200;

fn limits(header_timeout: Duration) -> AppOptions {
    AppOptions {
        connection_limits: ConnectionLimits {
            header_timeout,
            ..ConnectionLimits::default()
        },
        ..AppOptions::default()
    }
}

/// Sends a request line and then one header byte at a time, slowly, until the server hangs up;
/// returns whether it did hang up (rather than the sender running out of bytes).
async fn slowloris(mut stream: TcpStream, path: String) -> bool {
    let head = format!("POST {path} HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    if stream.write_all(head.as_bytes()).await.is_err() {
        return true;
    }
    for _ in 0..600 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if stream.write_all(b"a").await.is_err() {
            return true;
        }
        let mut buf = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(1), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => return true, // an answer (408) means the server ended the request
            Err(_) => {}
        }
    }
    false
}

/// Connects and sends nothing; returns whether the server closed the connection.
async fn silent(mut stream: TcpStream) -> bool {
    let mut buf = [0u8; 256];
    matches!(
        tokio::time::timeout(Duration::from_secs(120), stream.read(&mut buf)).await,
        Ok(Ok(_) | Err(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_silent_connections_are_cut_off_and_do_not_starve_deliveries() {
    let app = spawn_app_with(limits(Duration::from_secs(2))).await;
    let path = format!(
        "/hooks/tagmango/{}/webinar.completed.all",
        app.source("tagmango").token
    );
    // Connections are opened one after another, as an attacker's would arrive: hundreds of
    // simultaneous handshakes overflow the kernel's SYN queue, and connections the kernel drops
    // never reach the receiver at all.
    let mut held = Vec::new();
    for _ in 0..SLOW_SENDERS {
        let stream = TcpStream::connect(app.addr).await.unwrap();
        held.push(tokio::spawn(slowloris(stream, path.clone())));
    }
    for _ in 0..SILENT_SENDERS {
        let stream = TcpStream::connect(app.addr).await.unwrap();
        held.push(tokio::spawn(silent(stream)));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // While all of them hold their connections, a platform's deliveries go through.
    for n in 0..20 {
        let body = format!(
            r#"{{"name":"P{n}","email":"p{n}@example.com","webinar":"W","webinarId":"w1"}}"#
        );
        let (status, _) = answer(
            app.post("tagmango", Some("webinar.completed.all"), body)
                .await,
        )
        .await;
        assert_eq!(
            status, 200,
            "delivery {n} while {SLOW_SENDERS} slow senders wait"
        );
    }

    let mut cut_off = 0;
    let mut left_open = Vec::new();
    for (n, connection) in held.into_iter().enumerate() {
        if connection.await.unwrap() {
            cut_off += 1;
        } else {
            left_open.push(if n < SLOW_SENDERS { "slow" } else { "silent" });
        }
    }
    assert_eq!(
        cut_off,
        SLOW_SENDERS + SILENT_SENDERS,
        "every slow or silent connection is closed by the server; left open: {left_open:?}"
    );
    assert_eq!(app.count("SELECT count(*) FROM deliveries"), 20);
    support::reliability::record(
        "slow_senders",
        &serde_json::json!({
            "slow_connections": SLOW_SENDERS, "silent_connections": SILENT_SENDERS,
            "cut_off": cut_off, "deliveries_meanwhile_acknowledged": 20,
        }),
    );
}

#[tokio::test]
async fn a_request_head_over_the_limit_gets_431_and_stores_nothing() {
    let app = spawn_app_with(AppOptions::default()).await;
    let huge = "x".repeat(2 * ConnectionLimits::default().max_header_bytes);
    let response = app
        .client
        .post(app.hook_url("tagmango", Some("webinar.completed.all")))
        .header("X-Padding", huge)
        .body(r#"{"email":"a@example.com"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 431);
    assert_eq!(app.count("SELECT count(*) FROM deliveries"), 0);
    // A normal head still passes.
    let (status, _) = answer(
        app.post(
            "tagmango",
            Some("webinar.completed.all"),
            r#"{"name":"A","email":"a@example.com","webinarId":"w"}"#.to_owned(),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
}
