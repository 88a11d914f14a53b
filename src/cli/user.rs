//! `clinicflow user add|list|remove`: the console's staff accounts (a JSON file of argon2
//! hashes, `CLINICFLOW_STAFF_FILE`, default `data/staff.json`). The password is read from
//! stdin (one line), never from the command line where `ps` and shell history would see it.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::console::{Accounts, Role};

/// Where `serve` and `user` find the staff accounts unless told otherwise.
pub const DEFAULT_STAFF_FILE: &str = "data/staff.json";

#[derive(clap::Args, Debug)]
pub struct UserArgs {
    #[command(subcommand)]
    pub action: UserAction,
    /// The staff accounts file.
    #[arg(long, env = "CLINICFLOW_STAFF_FILE", default_value = DEFAULT_STAFF_FILE, global = true)]
    pub file: PathBuf,
}

#[derive(clap::Subcommand, Debug)]
pub enum UserAction {
    /// Add an account, or set a new password and role for an existing one (password on stdin).
    Add {
        name: String,
        #[arg(long, value_enum, default_value_t = Role::Receptionist)]
        role: Role,
    },
    /// List the accounts (names and roles).
    List,
    /// Remove an account.
    Remove { name: String },
}

pub fn run(args: UserArgs) -> anyhow::Result<ExitCode> {
    let mut accounts = Accounts::load(&args.file)?;
    match args.action {
        UserAction::Add { name, role } => {
            eprintln!(
                "password for {name} (one line, at least {} characters):",
                crate::console::accounts::MIN_PASSWORD
            );
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            let password = line.trim_end_matches(['\r', '\n']);
            accounts.set(&name, role, password)?;
            accounts.save(&args.file)?;
            eprintln!("{name} ({}) saved in {}", role.as_str(), args.file.display());
        }
        UserAction::List => {
            for u in &accounts.users {
                println!("{}\t{}", u.name, u.role.as_str());
            }
        }
        UserAction::Remove { name } => {
            let before = accounts.users.len();
            accounts.users.retain(|u| u.name != name);
            if accounts.users.len() == before {
                eprintln!("there is no account named {name}");
                return Ok(ExitCode::FAILURE);
            }
            accounts.save(&args.file)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
