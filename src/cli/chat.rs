//! `clinicflow chat`: a conversation in the terminal. When stdin is not a terminal it reads one
//! message per line and prints each reply line prefixed with `bot> `, so it can be scripted.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use crate::flow::bot::Bot;
use crate::service::{Service, TurnRequest};
use crate::store::Store;

pub async fn run(bot: Arc<Bot>, db: &str, now: Option<&str>, session: &str) -> anyhow::Result<ExitCode> {
    let store = Store::connect(db).await?;
    let pinned = match now {
        Some(s) => Some(super::parse_now(s, &bot.clinic.tz)?),
        None => None,
    };
    let (llm, nlu_line) = crate::llm::from_env_with_banner()?;
    let service = Service::new(store, bot.clone()).with_llm(llm);
    // On stderr: scripted chats read the replies from stdout.
    eprintln!("{nlu_line}");
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        let hint = match bot.clinic.language {
            crate::lang::Lang::Es => "escriba un mensaje (Ctrl-D para salir)",
            crate::lang::Lang::En => "write a message (Ctrl-D to leave)",
        };
        println!("{} — {hint}", bot.clinic.name);
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        if interactive {
            print!("you> ");
            std::io::stdout().flush()?;
        }
        let Some(line) = lines.next() else { break };
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let now = pinned.clone().unwrap_or_else(|| service.now());
        let req = TurnRequest {
            session_id: session.to_string(),
            channel: "cli".into(),
            user: "terminal".into(),
            text: line,
            now,
            message_id: None,
            llm_budget: None,
        };
        match service.handle(req).await {
            Ok(resp) => {
                for reply in &resp.replies {
                    for l in reply.lines() {
                        println!("bot> {l}");
                    }
                }
            }
            Err(e) => eprintln!("error: {e}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
