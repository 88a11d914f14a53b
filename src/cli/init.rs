//! `clinicflow init <slug>`: a new clinic, clinics/<slug>/, from the built-in template
//! (src/clinics/template.rs), and what to edit next.

use std::process::ExitCode;

#[derive(clap::Args, Debug, Clone)]
pub struct InitArgs {
    /// The new clinic's short name: lowercase letters, digits and `-` (e.g. `dental-norte`).
    /// It names its folder, its database and its URLs.
    pub slug: String,
    #[command(flatten)]
    pub dir: super::DirArg,
}

pub fn run(args: &InitArgs) -> ExitCode {
    let folder = match crate::clinics::template::write(&args.dir.dir, &args.slug) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let slug = &args.slug;
    let shown = folder
        .strip_prefix(&args.dir.dir)
        .unwrap_or(&folder)
        .display()
        .to_string();
    let dir = if args.dir.dir == std::path::Path::new(".") {
        String::new()
    } else {
        format!(" --dir {}", args.dir.dir.display())
    };
    println!("Created {shown}/ (flows, prompts in Spanish and English, schemas, 4 scripted conversations).");
    println!();
    println!("Next:");
    println!("  1. Edit {shown}/flows/clinic.yaml: the clinic's name, time zone, language, address,");
    println!("     phone, opening hours, holidays, specialties and professionals with their schedules.");
    println!("  2. Give it its numbers (WhatsApp, SMS, voice) in the same file, so messages to them");
    println!("     reach this clinic (docs/clinics.md, \"Routing\").");
    println!("  3. clinicflow check --clinic {slug}{dir}     (every problem with file:line:column)");
    println!("  4. clinicflow test --clinic {slug}{dir}      (its scripted conversations in");
    println!("     {shown}/tests/conversations/: change them with the specialties)");
    println!("  5. clinicflow chat --clinic {slug}{dir}      (talk to it)");
    println!("A running `clinicflow serve` picks the new folder up by itself.");
    ExitCode::SUCCESS
}
