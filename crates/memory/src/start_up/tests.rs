//! The executable's clean mappings are found, dropped from the resident set, and run again.

use super::{CleanMapping, clean_mappings, release_control_plane_code};

const SMAPS: &str = "\
5555aaaa0000-5555aaab0000 r--p 00000000 08:01 42 /usr/bin/gateway
Rss:                  64 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
5555aaab0000-5555aacc0000 r-xp 00010000 08:01 42 /usr/bin/gateway
Private_Clean:        12 kB
Private_Dirty:        24 kB
Anonymous:             0 kB
Swap:                  0 kB
5555aacc0000-5555aacd0000 r--p 00220000 08:01 42 /usr/bin/gateway
Private_Dirty:         8 kB
Anonymous:             8 kB
5555aacd0000-5555aace0000 rw-p 00230000 08:01 42 /usr/bin/gateway
Private_Dirty:         0 kB
7f0000000000-7f0000010000 r-xp 00000000 08:01 7 /usr/lib/libc.so.6
Private_Dirty:         0 kB
";

#[test]
fn only_clean_read_only_mappings_of_the_executable_are_chosen() {
    let chosen = clean_mappings(SMAPS, "/usr/bin/gateway");
    assert_eq!(
        chosen,
        vec![
            CleanMapping {
                start: 0x5555_aaaa_0000,
                end: 0x5555_aaab_0000
            },
            CleanMapping {
                start: 0x5555_aaab_0000,
                end: 0x5555_aacc_0000
            },
        ],
        "the relocated read-only mapping, the writable one and the library stay; a file \
         written recently (dirty in the page cache: Private_Dirty without Anonymous) goes"
    );
    assert!(clean_mappings(SMAPS, "/usr/bin/other").is_empty());
}

/// Resident file-backed memory of this process, in KiB.
fn resident_file_kib() -> u64 {
    crate::status_kib("RssFile")
}

#[test]
fn released_code_leaves_the_resident_set_and_runs_again() {
    let before = resident_file_kib();
    let released = release_control_plane_code().expect("madvise on the test binary's own code");
    let after = resident_file_kib();
    assert!(released > 0, "the test binary has clean read-only mappings");
    assert!(
        after < before,
        "resident file pages did not drop: {before} → {after} KiB"
    );
    // Code runs again from the dropped pages (formatting, the test harness, this function),
    // and constants read back the same.
    let text = format!("{:>8}|{:?}", 42, SMAPS.lines().next());
    assert_eq!(
        text,
        "      42|Some(\"5555aaaa0000-5555aaab0000 r--p 00000000 08:01 42 /usr/bin/gateway\")"
    );
}
