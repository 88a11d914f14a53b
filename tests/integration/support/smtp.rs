//! A fake SMTP server on loopback: just enough of RFC 5321 for lettre (220 greeting, EHLO,
//! MAIL, RCPT, DATA, QUIT; no TLS, no AUTH), keeping every message it is given.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc};

/// One message as the server took it.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body, dot-unstuffed, lines joined with "\n".
    pub data: String,
}

impl Mail {
    /// The raw value of header `name` (folded lines joined).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\n\n").next().unwrap_or_default();
        let mut value: Option<String> = None;
        for line in head.lines() {
            match &mut value {
                Some(v) if line.starts_with([' ', '\t']) => v.push_str(line),
                Some(_) => break,
                None => {
                    if let Some((k, v)) = line.split_once(':')
                        && k.eq_ignore_ascii_case(name)
                    {
                        value = Some(v.trim().to_string());
                    }
                }
            }
        }
        value
    }

    /// The subject, RFC 2047 encoded words (`=?utf-8?b?…?=`, what lettre writes) decoded:
    /// the space between two encoded words is not part of the text, any other is.
    pub fn subject(&self) -> String {
        let raw = self.header("Subject").unwrap_or_default();
        let mut out = String::new();
        let mut after_encoded = false;
        for word in raw.split_whitespace() {
            let lower = word.to_ascii_lowercase();
            let encoded = lower.strip_prefix("=?utf-8?b?").and_then(|w| w.strip_suffix("?="));
            let text = match encoded {
                Some(_) => {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(&word[10..word.len() - 2])
                        .expect("base64 word");
                    String::from_utf8(bytes).expect("utf-8 word")
                }
                None => word.to_string(),
            };
            let joined = after_encoded && encoded.is_some();
            if !out.is_empty() && !joined {
                out.push(' ');
            }
            out.push_str(&text);
            after_encoded = encoded.is_some();
        }
        out.trim().to_string()
    }

    /// The body, its transfer encoding undone.
    pub fn body(&self) -> String {
        let raw = self.data.split_once("\n\n").map(|(_, b)| b).unwrap_or_default();
        let encoding = self.header("Content-Transfer-Encoding").unwrap_or_default();
        let bytes = match encoding.to_ascii_lowercase().as_str() {
            "quoted-printable" => {
                quoted_printable::decode(raw.replace('\n', "\r\n"), quoted_printable::ParseMode::Robust)
                    .expect("quoted-printable body")
            }
            "base64" => base64::engine::general_purpose::STANDARD
                .decode(raw.split_whitespace().collect::<String>())
                .expect("base64 body"),
            _ => raw.as_bytes().to_vec(),
        };
        String::from_utf8(bytes).expect("utf-8 body").replace("\r\n", "\n")
    }
}

pub struct FakeSmtp {
    pub port: u16,
    connections: Arc<AtomicUsize>,
    mails: Mutex<mpsc::UnboundedReceiver<Mail>>,
}

impl FakeSmtp {
    pub async fn start() -> FakeSmtp {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::unbounded_channel();
        let counter = connections.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(session(socket, tx.clone()));
            }
        });
        FakeSmtp {
            port,
            connections,
            mails: Mutex::new(rx),
        }
    }

    /// What `CLINICFLOW_SMTP_URL` is set to for this server.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// How many SMTP connections were opened.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The next message taken; panics if none arrives within 10 s.
    pub async fn next_mail(&self) -> Mail {
        let mut rx = self.mails.lock().await;
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("no email within 10 s")
            .expect("the fake SMTP server stopped")
    }

    /// A message already taken, if any (does not wait).
    pub async fn try_mail(&self) -> Option<Mail> {
        self.mails.lock().await.try_recv().ok()
    }
}

async fn session(socket: tokio::net::TcpStream, tx: mpsc::UnboundedSender<Mail>) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    reply(&mut write, "220 fake.local ESMTP\r\n").await;
    let mut mail = Mail {
        from: String::new(),
        to: Vec::new(),
        data: String::new(),
    };
    let mut in_data = false;
    while let Ok(Some(line)) = lines.next_line().await {
        if in_data {
            if line == "." {
                in_data = false;
                let done = std::mem::replace(
                    &mut mail,
                    Mail {
                        from: String::new(),
                        to: Vec::new(),
                        data: String::new(),
                    },
                );
                let _ = tx.send(done);
                reply(&mut write, "250 2.0.0 queued\r\n").await;
            } else {
                let line = line
                    .strip_prefix('.')
                    .filter(|_| line.starts_with(".."))
                    .unwrap_or(&line);
                mail.data.push_str(line);
                mail.data.push('\n');
            }
            continue;
        }
        let upper = line.to_ascii_uppercase();
        let angle = |s: &str| {
            s.split_once('<')
                .and_then(|(_, r)| r.split_once('>'))
                .map(|(a, _)| a.to_string())
                .unwrap_or_default()
        };
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            reply(&mut write, "250-fake.local\r\n250 8BITMIME\r\n").await;
        } else if upper.starts_with("MAIL FROM:") {
            mail.from = angle(&line);
            reply(&mut write, "250 2.1.0 ok\r\n").await;
        } else if upper.starts_with("RCPT TO:") {
            mail.to.push(angle(&line));
            reply(&mut write, "250 2.1.5 ok\r\n").await;
        } else if upper == "DATA" {
            in_data = true;
            reply(&mut write, "354 end with .\r\n").await;
        } else if upper == "QUIT" {
            reply(&mut write, "221 2.0.0 bye\r\n").await;
            break;
        } else if upper == "RSET" || upper == "NOOP" {
            reply(&mut write, "250 ok\r\n").await;
        } else {
            reply(&mut write, "502 5.5.2 not implemented\r\n").await;
        }
    }
}

async fn reply(w: &mut tokio::net::tcp::OwnedWriteHalf, s: &str) {
    let _ = w.write_all(s.as_bytes()).await;
}

/// A mailer that sends to `smtp` as `Clínica San Rafael <turnos@example.com>`.
pub fn mailer(smtp: &FakeSmtp) -> std::sync::Arc<clinicflow::email::Mailer> {
    let vars = [
        ("CLINICFLOW_SMTP_URL", smtp.url()),
        (
            "CLINICFLOW_SMTP_FROM",
            "Clínica San Rafael <turnos@example.com>".to_string(),
        ),
    ];
    let mailer = clinicflow::email::Mailer::from_vars(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()));
    Arc::new(mailer.expect("settings").expect("a mailer"))
}
