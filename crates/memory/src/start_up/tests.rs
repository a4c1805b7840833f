//! The clean file mappings (the executable's and its libraries') are found, dropped from the
//! resident set, and run again.

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
7f0000010000-7f0000011000 r--p 00010000 08:01 7 /usr/lib/libc.so.6
Anonymous:             4 kB
7f0000020000-7f0000030000 r--s 00000000 00:01 9 /memfd:ring (deleted)
Anonymous:             0 kB
7f0000030000-7f0000031000 r--p 00000000 00:05 3 /dev/zero
Anonymous:             0 kB
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0 [vdso]
";

#[test]
fn only_clean_private_read_only_file_mappings_are_chosen() {
    let chosen = clean_mappings(SMAPS);
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
            CleanMapping {
                start: 0x7f00_0000_0000,
                end: 0x7f00_0001_0000
            },
        ],
        "the executable's and the library's code go (a file written recently, dirty in the \
         page cache: Private_Dirty without Anonymous, too); relocated read-only data, writable, \
         shared, device, memfd and special mappings stay"
    );
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
