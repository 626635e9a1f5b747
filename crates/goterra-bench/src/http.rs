//! HTTP/1.1 over a bare TCP stream: one request, one complete answer.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A complete answer: status code and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::from_slice(&self.body)?)
    }
}

/// A request's text: `method path`, extra header lines (`Name: value`) and a body.
pub fn request_text(method: &str, path: &str, host: &str, headers: &[String], body: &str) -> String {
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    for header in headers {
        text.push_str(header);
        text.push_str("\r\n");
    }
    if !body.is_empty() {
        text.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    text.push_str("\r\n");
    text.push_str(body);
    text
}

/// Writes `request` on `stream` and reads one complete answer (the connection stays open).
pub async fn exchange(stream: &mut TcpStream, request: &[u8]) -> anyhow::Result<Answer> {
    stream.write_all(request).await?;
    read_answer(stream).await
}

/// Reads one answer with a `Content-Length` (what the platform sends for JSON).
pub async fn read_answer(stream: &mut TcpStream) -> anyhow::Result<Answer> {
    let mut answer = Vec::with_capacity(512);
    let mut buffer = [0u8; 2048];
    loop {
        let read = stream.read(&mut buffer).await?;
        anyhow::ensure!(read > 0, "the connection closed before a complete answer");
        answer.extend_from_slice(&buffer[..read]);
        if let Some(end_of_head) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&answer[..end_of_head]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse::<usize>().ok())
                .unwrap_or(0);
            let body_start = end_of_head + 4;
            if answer.len() >= body_start + length {
                let status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|code| code.parse().ok())
                    .unwrap_or(0);
                return Ok(Answer {
                    status,
                    body: answer[body_start..body_start + length].to_vec(),
                });
            }
        }
    }
}

/// One request on a fresh connection.
pub async fn once(address: std::net::SocketAddr, request: &str) -> anyhow::Result<Answer> {
    let mut stream = TcpStream::connect(address).await?;
    exchange(&mut stream, request.as_bytes()).await
}
