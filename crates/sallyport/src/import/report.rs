//! What an import read, took and refused, per table; and progress lines while it runs.

use std::io::{IsTerminal, Write};
use std::time::Instant;

#[derive(Default)]
pub struct TableReport {
    pub read: u64,
    pub imported: u64,
    /// (row id, why)
    pub rejected: Vec<(String, String)>,
}

pub struct Progress {
    table: &'static str,
    total: u64,
    done: u64,
    started: Instant,
    last: Instant,
    terminal: bool,
}

impl Progress {
    pub fn new(table: &'static str, total: u64) -> Progress {
        Progress {
            table,
            total,
            done: 0,
            started: Instant::now(),
            last: Instant::now(),
            terminal: std::io::stderr().is_terminal(),
        }
    }

    pub fn advance(&mut self, n: u64) {
        self.done += n;
        // A terminal gets a line rewritten in place; a log gets a line every few seconds.
        let every = if self.terminal { 0.2 } else { 5.0 };
        if self.last.elapsed().as_secs_f64() >= every {
            self.last = Instant::now();
            self.print(false);
        }
    }

    pub fn finish(&mut self) {
        self.print(true);
    }

    fn print(&self, last: bool) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = self.done as f64 / secs;
        let eta = if rate > 0.0 && self.total > self.done {
            format!(", ETA {:.0}s", (self.total - self.done) as f64 / rate)
        } else {
            String::new()
        };
        let line = format!(
            "{}: {}/{} rows, {:.0} rows/s{}",
            self.table, self.done, self.total, rate, eta
        );
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r\x1b[2K{line}");
            if last {
                let _ = writeln!(err);
            }
        } else {
            let _ = writeln!(err, "{line}");
        }
    }
}

pub fn print_summary(tables: &[(&str, &TableReport)], dry_run: bool) {
    let verb = if dry_run { "would import" } else { "imported" };
    println!("{:<42} {:>10} {:>13} {:>10}", "table", "read", verb, "rejected");
    for (name, t) in tables {
        println!(
            "{:<42} {:>10} {:>13} {:>10}",
            name,
            t.read,
            t.imported,
            t.rejected.len()
        );
    }
    let rejected: usize = tables.iter().map(|(_, t)| t.rejected.len()).sum();
    if rejected > 0 {
        println!("\nRejected rows ({rejected}):");
        for (name, t) in tables {
            for (id, why) in &t.rejected {
                println!("  {name} {id}: {why}");
            }
        }
    }
}
