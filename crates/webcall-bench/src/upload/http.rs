//! The bench's HTTP/1.1, written by hand over a `TcpStream`: an upload whose
//! body is generated chunk by chunk as it is sent, and a download hashed as it
//! arrives (neither is ever whole in memory).

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{hex, seed, Body};

/// Uploads client `i`'s body; the attachment's id and the time from the first
/// byte sent to the last byte of the answer.
pub(super) async fn upload(
    authority: &str,
    room: &str,
    token: &str,
    i: usize,
    size: u64,
    chunk: usize,
) -> anyhow::Result<(String, Duration)> {
    let mut stream = TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    let head = format!(
        "POST /api/v1/rooms/{room}/attachments?name=bench-{i}.bin HTTP/1.1\r\nHost: {authority}\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {size}\r\nConnection: close\r\n\r\n"
    );
    let started = Instant::now();
    stream.write_all(head.as_bytes()).await?;
    let mut body = Body::new(seed(i), size);
    let mut buf = vec![0; chunk];
    let mut write_error = None;
    loop {
        let n = body.fill(&mut buf);
        if n == 0 {
            break;
        }
        if let Err(err) = stream.write_all(&buf[..n]).await {
            // The server may have answered early (413, 429…): read that.
            write_error = Some(err);
            break;
        }
    }
    let (status, _, answer) =
        read_answer(&mut stream)
            .await
            .with_context(|| match &write_error {
                Some(err) => format!("sending the body failed ({err}) and no answer came"),
                None => "reading the answer".to_owned(),
            })?;
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&answer);
    if status != 201 {
        bail!(
            "HTTP {status}: {}",
            text.chars().take(300).collect::<String>()
        );
    }
    let message: Value = serde_json::from_str(&text).context("the 201's body")?;
    let attachment = &message["message"]["attachment"];
    if attachment["size"].as_u64() != Some(size) {
        bail!("stored with size {} instead of {size}", attachment["size"]);
    }
    let id = attachment["id"]
        .as_str()
        .context("no message.attachment.id in the 201")?;
    Ok((id.to_owned(), took))
}

/// A download as it arrived.
pub(super) struct Downloaded {
    pub(super) bytes: u64,
    pub(super) sha256: String,
    pub(super) etag: Option<String>,
    pub(super) took: Duration,
}

pub(super) async fn download(
    authority: &str,
    room: &str,
    token: &str,
    id: &str,
) -> anyhow::Result<Downloaded> {
    let mut stream = TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    let started = Instant::now();
    let head = format!(
        "GET /api/v1/rooms/{room}/attachments/{id} HTTP/1.1\r\nHost: {authority}\r\n\
         Authorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    let (status, headers, mut first) = read_head(&mut stream).await?;
    if status != 200 {
        bail!("GET the file: HTTP {status}");
    }
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        bail!("chunked download: the contract says Content-Length");
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let length: u64 = header("content-length")
        .and_then(|v| v.parse().ok())
        .context("no Content-Length on the download")?;
    let mut hasher = Sha256::new();
    let mut bytes = first.len() as u64;
    hasher.update(&first);
    first.clear();
    let mut buf = vec![0; 256 * 1024];
    while bytes < length {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            bail!("the download ended after {bytes} of {length} bytes");
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(Downloaded {
        bytes,
        sha256: hex(&hasher.finalize()),
        etag: header("etag"),
        took: started.elapsed(),
    })
}

/// Status, headers (names in lowercase) and what came after them.
async fn read_head(
    stream: &mut TcpStream,
) -> anyhow::Result<(u16, Vec<(String, String)>, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buf = [0; 8192];
    let end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        if data.len() > 64 * 1024 {
            bail!("no end of the response head in 64 KiB");
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            bail!("the connection closed before a response");
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .context("no status line")?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok((status, headers, data[end + 4..].to_vec()))
}

/// A whole (small) answer: the connection is `close`, so its body ends at EOF.
async fn read_answer(
    stream: &mut TcpStream,
) -> anyhow::Result<(u16, Vec<(String, String)>, Vec<u8>)> {
    let (status, headers, mut body) = read_head(stream).await?;
    stream.read_to_end(&mut body).await?;
    Ok((status, headers, body))
}
