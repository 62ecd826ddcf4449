//! A small real SMTP server for the mail tests: EHLO/HELO, MAIL FROM, RCPT TO, DATA,
//! RSET, NOOP and QUIT over TCP on 127.0.0.1. It keeps every message with its envelope,
//! can be stopped (the port refuses connections) and started again on the same port,
//! and can be muted: it then accepts connections and never says a word, like a server
//! that hangs.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// One message as the sink received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The DATA, dot-stuffing undone.
    pub data: Vec<u8>,
}

impl Received {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(&self.data)
            .expect("a parsable message")
    }
}

struct Shared {
    messages: Mutex<Vec<Received>>,
    /// How many messages have arrived, for waiting on.
    count: watch::Sender<usize>,
    muted: AtomicBool,
    /// Connections accepted while muted.
    hung: AtomicUsize,
}

pub struct SmtpSink {
    port: u16,
    shared: Arc<Shared>,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl SmtpSink {
    /// Starts on a free port.
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().unwrap().port();
        let sink = SmtpSink {
            port,
            shared: Arc::new(Shared {
                messages: Mutex::new(Vec::new()),
                count: watch::channel(0).0,
                muted: AtomicBool::new(false),
                hung: AtomicUsize::new(0),
            }),
            server: Mutex::new(None),
        };
        sink.serve(listener);
        sink
    }

    /// `smtp://127.0.0.1:PORT`, plain SMTP (for `PICA_SMTP_URL`).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Closes the port and drops every open connection.
    pub fn stop(&self) {
        if let Some(server) = self.server.lock().unwrap().take() {
            server.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&self) {
        self.stop();
        // The aborted task releases the old listener when it is next polled.
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(l) => break l,
                Err(_) if tries < 500 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => panic!("could not listen on port {} again: {e}", self.port),
            }
        };
        self.serve(listener);
    }

    /// While muted, connections are accepted and never answered.
    pub fn mute(&self, muted: bool) {
        self.shared.muted.store(muted, Ordering::SeqCst);
    }

    /// How many connections were accepted while muted (and left hanging).
    pub fn hung(&self) -> usize {
        self.shared.hung.load(Ordering::SeqCst)
    }

    pub fn messages(&self) -> Vec<Received> {
        self.shared.messages.lock().unwrap().clone()
    }

    /// Waits until at least `n` messages have arrived (panics after `secs`); returns all.
    pub async fn wait_for(&self, n: usize, secs: u64) -> Vec<Received> {
        let mut count = self.shared.count.subscribe();
        let arrived =
            tokio::time::timeout(Duration::from_secs(secs), count.wait_for(|c| *c >= n)).await;
        assert!(
            matches!(arrived, Ok(Ok(_))),
            "timed out waiting for {n} messages; got {}",
            self.messages().len()
        );
        self.messages()
    }

    fn serve(&self, listener: TcpListener) {
        let shared = self.shared.clone();
        let task = tokio::spawn(async move {
            // Dropped with the task on stop: every connection ends with it.
            let mut connections = JoinSet::new();
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let shared = shared.clone();
                connections.spawn(async move {
                    if shared.muted.load(Ordering::SeqCst) {
                        shared.hung.fetch_add(1, Ordering::SeqCst);
                        hang(socket).await;
                    } else {
                        let _ = converse(socket, &shared).await;
                    }
                });
                while connections.try_join_next().is_some() {}
            }
        });
        *self.server.lock().unwrap() = Some(task);
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads and ignores everything, answering nothing, until the client gives up.
async fn hang(mut socket: TcpStream) {
    let mut buf = [0u8; 1024];
    while matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// The address inside `MAIL FROM:<a>` or `RCPT TO:<a>`.
fn path_of(arg: &str) -> String {
    let arg = arg.split_once(':').map_or(arg, |(_, rest)| rest).trim();
    let arg = arg.split_whitespace().next().unwrap_or("");
    arg.trim_start_matches('<')
        .trim_end_matches('>')
        .to_string()
}

async fn converse(socket: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink ESMTP ready\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
            "HELO" | "NOOP" => b"250 OK\r\n",
            "MAIL" => {
                from = path_of(command);
                to.clear();
                b"250 OK\r\n"
            }
            "RCPT" => {
                to.push(path_of(command));
                b"250 OK\r\n"
            }
            "RSET" => {
                (from, to) = (String::new(), Vec::new());
                b"250 OK\r\n"
            }
            "DATA" if to.is_empty() => b"503 RCPT first\r\n",
            "DATA" => {
                write.write_all(b"354 End with <CRLF>.<CRLF>\r\n").await?;
                let data = read_data(&mut lines).await?;
                let message = Received {
                    mail_from: std::mem::take(&mut from),
                    rcpt_to: std::mem::take(&mut to),
                    data,
                };
                shared.messages.lock().unwrap().push(message);
                shared.count.send_modify(|c| *c += 1);
                b"250 OK queued\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 Command not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}

/// The message up to the lone `.` line, with leading dots unstuffed.
async fn read_data(
    lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if lines.read_until(b'\n', &mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(data);
        }
        let unstuffed = if line.starts_with(b"..") {
            &line[1..]
        } else {
            &line[..]
        };
        data.extend_from_slice(unstuffed);
    }
}
