//! Loopback helpers for the HTTP tests: a tiny client that returns status
//! and body, and misbehaving servers.

#![allow(dead_code)] // each test file uses a different subset

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::{Method, Request, header};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Every request in these tests answers well within this, or the test fails
/// instead of hanging.
pub const REQUEST_BOUND: Duration = Duration::from_secs(5);

/// `GET path` on `addr`: status and body.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    request(Method::GET, addr, path).await
}

/// `method path` on `addr` over a new HTTP/1 connection: status and body.
pub async fn request(method: Method, addr: SocketAddr, path: &str) -> (u16, String) {
    tokio::time::timeout(REQUEST_BOUND, async {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
                .await
                .expect("handshake");
        let connection = tokio::spawn(connection);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, addr.to_string())
            .body(Empty::new())
            .expect("valid request");
        let response = sender.send_request(request).await.expect("response");
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.expect("body").to_bytes();
        connection.abort();
        (status, String::from_utf8(body.to_vec()).expect("UTF-8 body"))
    })
    .await
    .unwrap_or_else(|_| panic!("request to {addr}{path} took more than {REQUEST_BOUND:?}"))
}

/// A port nothing listens on: bound, read, released.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    drop(listener);
    addr
}

/// A server that accepts connections and never reads nor writes: hung. The
/// task holds every accepted socket until aborted.
pub async fn hung_server() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        // Bounded: the tests open a handful of connections at most.
        while held.len() < 64 {
            match listener.accept().await {
                Ok((socket, _)) => held.push(socket),
                Err(_) => break,
            }
        }
        std::future::pending::<()>().await;
    });
    (addr, task)
}

/// A server that answers every connection with `reply` and closes it.
pub async fn raw_server(reply: &'static [u8]) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let task = tokio::spawn(async move {
        for _ in 0..64 {
            let Ok((mut socket, _)) = listener.accept().await else { break };
            let _ = socket.write_all(reply).await;
            let _ = socket.shutdown().await;
        }
    });
    (addr, task)
}
