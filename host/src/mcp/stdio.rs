//! The stdio transport, hardened.
//!
//! rmcp reads newline-delimited JSON-RPC; on a line that is not JSON it
//! would say nothing. Claude Code (and a human debugging with a pipe)
//! deserves an answer, so lines pass through a filter first: a line that is
//! not JSON, or is longer than [`MAX_LINE`], gets a JSON-RPC error response
//! (`-32700` / `-32600`, id null) and is not forwarded; everything else goes
//! on to rmcp unchanged, except `server/discover`, which is answered
//! `-32601` here (see below). Output from rmcp, from the filter and the
//! channel events meet in one writer thread ([`super::writer`]) that writes
//! whole lines, so they never interleave.

use std::os::fd::AsFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::writer::{self, Ledger, Writer};
use crate::queue::Queued;
use crate::router::afterwards::Afterwards;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream};

/// Longest accepted JSON-RPC line.
pub const MAX_LINE: usize = 16 << 20;

/// Wire `input`/`output` (the process's stdin/stdout) into a transport for
/// rmcp: returns its reader and writer, and an [`Outlet`] for channel events
/// written beside rmcp's lines.
pub fn filtered<R, W>(
    input: R,
    output: W,
    ledger: Box<dyn Ledger>,
    afterwards: Afterwards,
) -> (DuplexStream, LineWriter, Outlet)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: std::io::Write + AsFd + Send + 'static,
{
    let lines_tx = writer::spawn(output, ledger, afterwards);
    let (mut to_rmcp, from_filter) = tokio::io::duplex(1 << 20);
    let errors = lines_tx.clone();
    tokio::spawn(async move {
        let mut input = BufReader::new(input);
        loop {
            match read_line(&mut input).await {
                Ok(Line::Eof) | Err(_) => break,
                Ok(Line::TooLong) => send_error(&errors, -32600, "message too large", None),
                Ok(Line::Text(line)) => {
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let Ok(message) = serde_json::from_slice::<serde_json::Value>(&line) else {
                        send_error(&errors, -32700, "parse error: the line is not JSON", None);
                        continue;
                    };
                    // Claude Code probes `server/discover` first and registers a
                    // channel only after falling back to `initialize`, which it
                    // does on -32601. Answered here, before rmcp's own handling.
                    if message.get("method").and_then(|m| m.as_str()) == Some("server/discover") {
                        if let Some(id) = message.get("id") {
                            send_error(
                                &errors,
                                -32601,
                                "Method not found: server/discover",
                                Some(id.clone()),
                            );
                        }
                        continue;
                    }
                    if to_rmcp.write_all(&line).await.is_err()
                        || to_rmcp.write_all(b"\n").await.is_err()
                    {
                        break;
                    }
                }
            }
        }
        // Dropping the pipe tells rmcp the client has gone.
        drop(to_rmcp);
    });
    let outlet = Outlet {
        lines: lines_tx.clone(),
    };
    (
        from_filter,
        LineWriter {
            lines: lines_tx,
            pending: Vec::new(),
        },
        outlet,
    )
}

/// Hands batches of channel events to the writer thread, beside rmcp's
/// lines (see [`super::writer`] for the order of commit and write).
#[derive(Clone, Debug)]
pub struct Outlet {
    lines: Writer,
}

impl Outlet {
    /// Catches the ledger up (before the process exits).
    pub fn settle(&self) {
        self.lines.settle();
    }

    /// Hands one JSON-RPC line of the server's own (a notification) to the
    /// writer. False when the writer has stopped.
    pub fn line(&self, line: String) -> bool {
        let mut line = line.into_bytes();
        line.push(b'\n');
        self.lines.line(line)
    }

    /// Hands `batch` to the writer (it records, then writes). False when
    /// the writer has stopped (the client is gone).
    pub fn events(&self, batch: Vec<Queued>) -> bool {
        let mut lines = Vec::with_capacity(batch.iter().map(|q| q.line.len() + 1).sum());
        let mut seqs = Vec::with_capacity(batch.len());
        let mut admitted = i64::MAX;
        for q in batch {
            lines.extend_from_slice(q.line.as_bytes());
            lines.push(b'\n');
            seqs.push(q.seq);
            admitted = admitted.min(q.admitted);
        }
        self.lines.events(seqs, lines, admitted)
    }
}

fn send_error(lines: &Writer, code: i64, message: &str, id: Option<serde_json::Value>) {
    let id = id.unwrap_or(serde_json::Value::Null);
    let body = serde_json::json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
    let mut line = body.to_string().into_bytes();
    line.push(b'\n');
    let _ = lines.line(line);
}

enum Line {
    Text(Vec<u8>),
    TooLong,
    Eof,
}

/// One line without its newline, never buffering more than [`MAX_LINE`].
async fn read_line<R: AsyncRead + Unpin>(input: &mut BufReader<R>) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = input.fill_buf().await?;
        if buf.is_empty() {
            return Ok(if line.is_empty() && !too_long {
                Line::Eof
            } else if too_long {
                Line::TooLong
            } else {
                Line::Text(line)
            });
        }
        let (chunk, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if !too_long {
            if line.len() + chunk.len() > MAX_LINE {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let used = done.unwrap_or(buf.len());
        input.consume(used);
        if done.is_some() {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Text(line)
            });
        }
    }
}

/// rmcp's side of stdout: whole lines go to the writer thread.
pub struct LineWriter {
    lines: Writer,
    pending: Vec<u8>,
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        this.pending.extend_from_slice(buf);
        while let Some(line) = crate::text::take_line(&mut this.pending) {
            if !this.lines.line(line) {
                return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// The output end the writer thread gets, and a task reading all of
    /// the other end.
    fn output() -> (std::fs::File, tokio::task::JoinHandle<String>) {
        let (r, w) = rustix::pipe::pipe().unwrap();
        let mut r = std::fs::File::from(r);
        let read = tokio::task::spawn_blocking(move || {
            let mut out = String::new();
            std::io::Read::read_to_string(&mut r, &mut out).unwrap();
            out
        });
        (std::fs::File::from(w), read)
    }

    /// A ledger that records everything.
    struct Everything;

    impl Ledger for Everything {
        fn deliver(
            &mut self,
            out: std::os::fd::BorrowedFd<'_>,
            _: &[i64],
            lines: &[u8],
            _: i64,
        ) -> super::writer::Sent {
            if super::writer::write_out(out, lines) {
                super::writer::Sent::Written
            } else {
                super::writer::Sent::Failed
            }
        }
        fn behind(&self) -> bool {
            false
        }
        fn idle(&mut self) {}
    }

    #[tokio::test]
    async fn bad_lines_get_errors_good_lines_pass() {
        let (client_in, server_in) = tokio::io::duplex(1 << 16);
        let (server_out, client_out) = output();
        let (mut to_rmcp, mut rmcp_out, outlet) = filtered(
            server_in,
            server_out,
            Box::new(Everything),
            Afterwards::default(),
        );
        let mut client_in = client_in;
        client_in
            .write_all(b"{\"a\":1}\nnot json\n\n[1,\n{\"b\":2}\n")
            .await
            .unwrap();
        drop(client_in);
        let mut forwarded = String::new();
        to_rmcp.read_to_string(&mut forwarded).await.unwrap();
        assert_eq!(forwarded, "{\"a\":1}\n{\"b\":2}\n");
        rmcp_out.write_all(b"{\"id\":1,").await.unwrap();
        // Events handed over between two halves of rmcp's line come out
        // whole, before it.
        assert!(outlet.events(vec![Queued {
            seq: 1,
            line: "{\"event\":1}".into(),
            admitted: 0,
        }]));
        rmcp_out.write_all(b"\"result\":{}}\n").await.unwrap();
        drop(rmcp_out);
        drop(outlet);
        let out = client_out.await.unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert!(lines.contains(&"{\"event\":1}"), "{out}");
        assert_eq!(
            lines.iter().filter(|l| l.contains("-32700")).count(),
            2,
            "{out}"
        );
        assert!(lines.contains(&"{\"id\":1,\"result\":{}}"), "{out}");
    }

    #[tokio::test]
    async fn an_oversized_line_is_refused_without_buffering_it() {
        let (client_in, server_in) = tokio::io::duplex(1 << 16);
        let (server_out, client_out) = output();
        let (mut to_rmcp, rmcp_out, outlet) = filtered(
            server_in,
            server_out,
            Box::new(Everything),
            Afterwards::default(),
        );
        drop(outlet);
        tokio::spawn(async move {
            let mut client_in = client_in;
            let chunk = vec![b'x'; 1 << 20];
            for _ in 0..(MAX_LINE >> 20) + 2 {
                client_in.write_all(&chunk).await.unwrap();
            }
            client_in.write_all(b"\n{\"ok\":true}\n").await.unwrap();
        });
        let mut forwarded = String::new();
        to_rmcp.read_to_string(&mut forwarded).await.unwrap();
        assert_eq!(forwarded, "{\"ok\":true}\n");
        drop(rmcp_out);
        let out = client_out.await.unwrap();
        assert!(out.contains("-32600") && out.contains("too large"), "{out}");
    }
}
