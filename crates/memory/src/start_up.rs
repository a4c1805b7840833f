//! Start-up memory: pages of the executable and its libraries that only start-up ran, and huge
//! pages.
//!
//! Loading and compiling the config runs code the request path never does (the YAML parser,
//! every deserializer, `compile`, the command line parser): about 5 MiB of the binary's pages
//! are mapped into the process for it, and stay in its resident set for its life although
//! they are never run again. The shared libraries' pages are the same (about 2 MiB at 5,000
//! routes: libc's and libm's code and tables, mapped by the loader's and the parser's calls and
//! the kernel's fault-around, which maps up to 16 neighbouring pages of every page touched).
//! [`release_control_plane_code`] unmaps every clean, read-only, file-backed page of the
//! process once (`madvise(MADV_DONTNEED)`); whatever runs afterwards, the request path first,
//! maps its pages again on first use, from the page cache. The pages stay in the page cache
//! (the kernel drops them there only under memory pressure, as it would have anyway): what drops
//! is the process's resident set, not the machine's memory in use.

use std::io;

/// Turns transparent huge pages off for this process (prctl `PR_SET_THP_DISABLE`), whatever
/// the host's THP mode. A gateway's heap is small and grows by kilobytes per connection, spread
/// over the allocator's pages: with THP each 2 MiB region it touches is resident whole, which
/// made the idle heap 8 MiB instead of 1 MiB. Huge pages buy nothing measurable here (a few
/// MiB of heap fit the TLB). A kernel without THP refuses the call, which changes nothing.
pub fn disable_huge_pages() {
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}

/// A file mapping that can be dropped: private, read-only, and with no page copied on write
/// (no relocated data: the loader writes those before making them read-only, and dropping them
/// would read them back unrelocated from the file).
#[derive(Debug, PartialEq, Eq)]
struct CleanMapping {
    start: usize,
    end: usize,
}

/// Whether a mapping's path is a regular file's: not a special mapping (`[vdso]`, `[heap]`),
/// a device, a memfd or System V shared memory.
fn is_file(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("/dev/")
        && !path.starts_with("/memfd:")
        && !path.starts_with("/SYSV")
}

/// The clean private read-only file mappings (the executable's and its libraries') in a
/// `/proc/PID/smaps` text.
fn clean_mappings(smaps: &str) -> Vec<CleanMapping> {
    let mut mappings = Vec::new();
    // (mapping, still clean) of the entry being read.
    let mut current: Option<(CleanMapping, bool)> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if let Some((start, end)) = first.split_once('-')
            && let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            )
        {
            if let Some((mapping, true)) = current.take() {
                mappings.push(mapping);
            }
            let perms = fields.next().unwrap_or("");
            let path = fields.nth(3).unwrap_or("");
            let read_only = perms.starts_with('r') && !perms.contains('w') && perms.ends_with('p');
            current = (read_only && is_file(path)).then_some((CleanMapping { start, end }, true));
            continue;
        }
        // Fields of the current mapping: a page copied on write (counted as anonymous, or
        // swapped out) makes it unsafe to drop. `Private_Dirty` alone is not such a page: it
        // also counts file pages dirty in the page cache (a binary written moments ago).
        if let Some((_, clean)) = &mut current
            && matches!(first, "Anonymous:" | "Swap:")
            && fields.next().is_some_and(|kib| kib != "0")
        {
            *clean = false;
        }
    }
    if let Some((mapping, true)) = current {
        mappings.push(mapping);
    }
    mappings
}

/// Drops the clean read-only file pages (code and constants of the executable and its shared
/// libraries) from the resident set; what runs next maps its pages again. Call once start-up
/// is over (the first config applied), and again once a burst of config changes is over (the
/// gateway does a second after the last one): applying a change maps the parser's and the
/// compiler's code back in.
/// Returns the bytes of the mappings advised. Errors: `/proc` unreadable, or `madvise` refused.
pub fn release_control_plane_code() -> io::Result<usize> {
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let mut released = 0;
    for mapping in clean_mappings(&smaps) {
        let length = mapping.end - mapping.start;
        let address = std::ptr::with_exposed_provenance_mut::<std::ffi::c_void>(mapping.start);
        // SAFETY: the range is a whole private mapping of a regular file (the executable or a
        // shared library) that `/proc/self/smaps` lists as read-only, with no anonymous (copied
        // on write) or swapped page: every page holds exactly the file's bytes (code and
        // constants; no relocated data). `MADV_DONTNEED` only unmaps such pages; the next
        // access maps the same bytes again from the file.
        // No Rust value lives there that could change, and read-only pages cannot have been
        // written since `smaps` was read.
        #[allow(unsafe_code)]
        let advised =
            unsafe { rustix::mm::madvise(address, length, rustix::mm::Advice::LinuxDontNeed) };
        advised?;
        released += length;
    }
    Ok(released)
}

#[cfg(test)]
mod tests;
