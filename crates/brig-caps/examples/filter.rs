//! A filter in the style of a spam filter: mail on stdin, verdicts on stdout, and a rules file
//! as its only other capability.
//!
//! ```sh
//! brig run --data rules=./rules.txt -- filter < mailbox.txt
//! ```
//!
//! `rules` holds one word per line (`#` starts a comment). Each input line comes out prefixed
//! `SPAM ` if it contains a rule's word (case-insensitive), `ok   ` otherwise; a count goes to
//! stderr. The filter reads its rules, enters capability mode, and only then reads untrusted
//! input: a bug in the parsing below can reach stdin, stdout and stderr, nothing else.

use std::io::{BufRead, Write};

fn main() {
    if let Err(e) = run() {
        eprintln!("filter: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut caps = brig_caps::Caps::load()?;
    let rules = String::from_utf8(caps.data("rules")?)?;
    let words: Vec<String> = rules
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_lowercase())
        .filter(|w| !w.is_empty())
        .collect();
    caps.enter_capability_mode()?;

    let (mut spam, mut total) = (0, 0);
    let out = std::io::stdout();
    let mut out = out.lock();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let lower = line.to_lowercase();
        let is_spam = words.iter().any(|w| lower.contains(w.as_str()));
        total += 1;
        spam += usize::from(is_spam);
        writeln!(out, "{} {line}", if is_spam { "SPAM" } else { "ok  " })?;
    }
    out.flush()?;
    eprintln!("filter: {spam} of {total} lines are spam");
    Ok(())
}
