//! The stdio transport, hardened.
//!
//! rmcp reads newline-delimited JSON-RPC; on a line that is not JSON it
//! would say nothing. Claude Code (and a human debugging with a pipe)
//! deserves an answer, so lines pass through a filter first: a line that is
//! not JSON, or is longer than [`MAX_LINE`], gets a JSON-RPC error response
//! (`-32700` / `-32600`, id null) and is not forwarded; everything else goes
//! on to rmcp unchanged, except `server/discover`, which is answered
//! `-32601` here (see below). Output from rmcp and from the filter meet in one
//! writer task that writes whole lines, so they never interleave.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream};
use tokio::sync::{mpsc, oneshot};

/// Longest accepted JSON-RPC line.
pub const MAX_LINE: usize = 16 << 20;

/// What the writer task writes.
enum Out {
    /// A line from rmcp or the filter.
    Line(Vec<u8>),
    /// Lines whose writer waits until they are written (and flushed).
    Delivery(Vec<u8>, oneshot::Sender<bool>),
}

/// Wire `input`/`output` (the process's stdin/stdout) into a transport for
/// rmcp: returns its reader and writer, and an [`Outlet`] for lines written
/// beside rmcp's.
pub fn filtered<R, W>(input: R, output: W) -> (DuplexStream, LineWriter, Outlet)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (lines_tx, lines_rx) = mpsc::unbounded_channel::<Out>();
    tokio::spawn(write_lines(output, lines_rx));
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

/// Writes whole lines to the output beside rmcp's, and says when they were
/// written: the delivery of channel events marks an event delivered only
/// after its line has left the process.
#[derive(Clone, Debug)]
pub struct Outlet {
    lines: mpsc::UnboundedSender<Out>,
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Out::Line(l) => write!(f, "Line({} bytes)", l.len()),
            Out::Delivery(l, _) => write!(f, "Delivery({} bytes)", l.len()),
        }
    }
}

impl Outlet {
    /// Writes `lines` (each ending in `\n`) and waits until they are written
    /// and flushed. Fails when the output is gone.
    pub async fn deliver(&self, lines: Vec<u8>) -> std::io::Result<()> {
        let (written, wait) = oneshot::channel();
        let gone = || std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        self.lines
            .send(Out::Delivery(lines, written))
            .map_err(|_| gone())?;
        match wait.await {
            Ok(true) => Ok(()),
            _ => Err(gone()),
        }
    }
}

fn send_error(
    lines: &mpsc::UnboundedSender<Out>,
    code: i64,
    message: &str,
    id: Option<serde_json::Value>,
) {
    let id = id.unwrap_or(serde_json::Value::Null);
    let body = serde_json::json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
    let mut line = body.to_string().into_bytes();
    line.push(b'\n');
    let _ = lines.send(Out::Line(line));
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

async fn write_lines<W: AsyncWrite + Unpin>(
    mut output: W,
    mut lines: mpsc::UnboundedReceiver<Out>,
) {
    while let Some(out) = lines.recv().await {
        let (bytes, written) = match out {
            Out::Line(line) => (line, None),
            Out::Delivery(lines, written) => (lines, Some(written)),
        };
        let ok = output.write_all(&bytes).await.is_ok() && output.flush().await.is_ok();
        if let Some(written) = written {
            let _ = written.send(ok);
        }
        if !ok {
            break;
        }
    }
}

/// rmcp's side of stdout: whole lines go to the writer task.
pub struct LineWriter {
    lines: mpsc::UnboundedSender<Out>,
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
            if this.lines.send(Out::Line(line)).is_err() {
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

    #[tokio::test]
    async fn bad_lines_get_errors_good_lines_pass() {
        let (client_in, server_in) = tokio::io::duplex(1 << 16);
        let (server_out, mut client_out) = tokio::io::duplex(1 << 16);
        let (mut to_rmcp, mut rmcp_out, outlet) = filtered(server_in, server_out);
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
        // A delivery between two halves of rmcp's line comes out whole, after it.
        let delivered = tokio::spawn({
            let outlet = outlet.clone();
            async move { outlet.deliver(b"{\"event\":1}\n".to_vec()).await }
        });
        rmcp_out.write_all(b"\"result\":{}}\n").await.unwrap();
        delivered.await.unwrap().unwrap();
        drop(rmcp_out);
        drop(outlet);
        let mut out = String::new();
        client_out.read_to_string(&mut out).await.unwrap();
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
        let (server_out, mut client_out) = tokio::io::duplex(1 << 16);
        let (mut to_rmcp, rmcp_out, outlet) = filtered(server_in, server_out);
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
        let mut out = String::new();
        client_out.read_to_string(&mut out).await.unwrap();
        assert!(out.contains("-32600") && out.contains("too large"), "{out}");
    }
}
