//! Start-up (argument parsing, YAML and JSON-Schema checks of the config, migrations, router and template
//! set-up) runs code spread over most of the binary's 30 MB of machine code, and the kernel maps each
//! page it touches plus its neighbours (fault-around). That code never runs again, yet those pages would
//! stay in the process's resident set for its whole life: about 20 MiB of a 30 MiB idle RSS.
//!
//! Once the server is listening, [`release`] tells the kernel the process no longer needs its read-only
//! file-backed mappings of its own binary (`madvise(MADV_DONTNEED)`). Nothing is lost: those mappings
//! hold only the file's bytes (a mapping with any private copy-on-write page, such as the relocated
//! RELRO data, is skipped), the pages stay in the page cache, and code that runs again is mapped back
//! by a minor fault. What remains resident afterwards is the code the server actually runs.

/// Drops the mappings described above. Answers how many bytes of mappings were released; errors are
/// not worth reporting (the process only keeps more memory resident).
pub fn release() -> usize {
    #[cfg(target_os = "linux")]
    {
        linux::release().unwrap_or(0)
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

#[cfg(target_os = "linux")]
mod linux {
    pub fn release() -> Option<usize> {
        let exe = std::fs::read_link("/proc/self/exe").ok()?;
        let exe = exe.to_str()?;
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut released = 0;
        for m in mappings(&smaps) {
            if m.path != exe || !m.releasable() {
                continue;
            }
            // SAFETY: the range is a whole mapping of this process that is read-only, private and holds
            // no anonymous (copy-on-write) page, so dropping its page-table entries loses no data: the
            // next access maps the same file bytes back. No Rust reference is invalidated.
            let ok =
                unsafe { libc::madvise(m.start as *mut libc::c_void, m.end - m.start, libc::MADV_DONTNEED) }
                    == 0;
            if ok {
                released += m.end - m.start;
            }
        }
        Some(released)
    }

    pub(super) struct Mapping<'a> {
        pub start: usize,
        pub end: usize,
        pub perms: &'a str,
        pub path: &'a str,
        pub anonymous_kb: Option<u64>,
    }

    impl Mapping<'_> {
        pub fn releasable(&self) -> bool {
            self.perms.starts_with('r')
                && !self.perms.contains('w')
                && self.perms.ends_with('p')
                && self.anonymous_kb == Some(0)
        }
    }

    /// The mappings of a `/proc/<pid>/smaps` text: a header line per mapping, then `Key: value kB` lines.
    pub(super) fn mappings(smaps: &str) -> Vec<Mapping<'_>> {
        let mut out: Vec<Mapping<'_>> = vec![];
        for line in smaps.lines() {
            if let Some(rest) = line.strip_prefix("Anonymous:") {
                if let Some(last) = out.last_mut() {
                    last.anonymous_kb = rest.trim().trim_end_matches("kB").trim().parse().ok();
                }
                continue;
            }
            let mut fields = line.split_whitespace();
            let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
                continue;
            };
            let Some((start, end)) = range.split_once('-') else {
                continue;
            };
            let (Ok(start), Ok(end)) = (usize::from_str_radix(start, 16), usize::from_str_radix(end, 16))
            else {
                continue;
            };
            // offset, device, inode, then the path (which may contain spaces).
            let path = fields.nth(3).map(|first| {
                let at = line.find(first).unwrap_or(line.len());
                line[at..].trim_end()
            });
            out.push(Mapping {
                start,
                end,
                perms,
                path: path.unwrap_or(""),
                anonymous_kb: None,
            });
        }
        out
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::linux::mappings;

    #[test]
    fn only_untouched_read_only_private_file_mappings_are_releasable() {
        let smaps = "\
5624e5ed9000-5624e6963000 r--p 00000000 fe:00 16649248                   /opt/my app/sallyport
Rss:                3548 kB
Anonymous:             0 kB
5624e6963000-5624e8635000 r-xp 00a89000 fe:00 16649248                   /opt/my app/sallyport
Anonymous:             0 kB
5624e8635000-5624e8755000 r--p 0275a000 fe:00 16649248                   /opt/my app/sallyport
Anonymous:          1152 kB
5624e8755000-5624e875d000 rw-p 0287a000 fe:00 16649248                   /opt/my app/sallyport
Anonymous:             0 kB
7f0000000000-7f0000001000 r--s 00000000 fe:00 1                          /dev/shm/x
Anonymous:             0 kB
";
        let m = mappings(smaps);
        assert_eq!(m.len(), 5);
        assert_eq!(m[0].path, "/opt/my app/sallyport");
        assert_eq!((m[0].start, m[0].end), (0x5624e5ed9000, 0x5624e6963000));
        let releasable: Vec<bool> = m.iter().map(|m| m.releasable()).collect();
        // text and rodata yes; relocated RELRO (private copies), writable data and shared mappings no.
        assert_eq!(releasable, [true, true, false, false, false]);
    }

    #[test]
    fn releasing_keeps_the_process_working() {
        let before = std::hint::black_box(vec![1u8, 2, 3]);
        let released = super::release();
        assert!(released > 0, "the test binary's own code mappings are releasable");
        // Code, constants and relocated data are all still there afterwards.
        let after: u32 = before.iter().map(|b| *b as u32).sum();
        assert_eq!(after, 6);
        assert_eq!(format!("{:?}", Some("still")), "Some(\"still\")");
    }
}
