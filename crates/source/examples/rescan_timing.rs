//! Times the file source by hand; not a test, since wall times depend on the machine.
//!
//! ```text
//! cargo run --release -p source --example rescan_timing -- CONFIG [FILE]
//! ```
//!
//! `CONFIG` is a config file or directory, such as one `bench/control-plane` writes (100 routes
//! with their Services and EndpointSlices per file, or all of them in one file). This prints:
//!
//! - `load`: [`FileSource::load`] of the whole config, three times, and the CPU time the
//!   three took (on Linux; more than the wall time when parsing ran on several threads);
//! - `edit + rescan`: one document of `FILE` (default: the largest file) changed and the file
//!   replaced the way the benchmark does it (a hidden temporary renamed over it), then
//!   [`FileSource::rescan`]; the median and range of ten edits;
//! - `rescan, nothing changed`: what the watcher's safety-net rescan costs.
//!
//! The edit changes the number of the first `x-generation` value past the middle of the file
//! (what the benchmark's route edit changes), or else appends a comment. The file's original
//! text is written back at the end.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use source::FileSource;

const MARKER: &str = "x-generation, value: \"";

fn main() {
    let mut arguments = std::env::args_os().skip(1);
    let Some(config) = arguments.next().map(PathBuf::from) else {
        eprintln!("usage: rescan_timing CONFIG [FILE]");
        std::process::exit(2);
    };
    let file = arguments
        .next()
        .map_or_else(|| largest_file(&config), |name| config.join(name));
    let original = std::fs::read_to_string(&file).expect("the edited file is readable UTF-8");

    let mut loads = Vec::new();
    let mut source = None;
    let cpu_before = cpu_time();
    for _ in 0..3 {
        let started = Instant::now();
        let loaded = FileSource::load(&config).expect("the config loads");
        loads.push(started.elapsed());
        source = Some(loaded);
    }
    let load_cpu = cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let mut source = source.expect("loaded three times");
    let update = source.current();
    println!(
        "{}: {} objects in {} files",
        config.display(),
        update.store.len(),
        update.files.len()
    );
    match load_cpu {
        Some(cpu) => println!(
            "load: {} (CPU {} for the three)",
            list(&loads),
            milliseconds(cpu)
        ),
        None => println!("load: {}", list(&loads)),
    }

    let mut text = original.clone();
    let mut edits = Vec::new();
    for _ in 0..10 {
        text = edited(&text);
        replace(&file, &text);
        let started = Instant::now();
        let update = source.rescan().expect("the edit is a change");
        edits.push(started.elapsed());
        assert!(!update.changed_kinds.is_empty() || text.ends_with("# edit\n"));
    }
    println!(
        "edit + rescan of {}: {}",
        file.display(),
        summary(&mut edits)
    );

    let mut unchanged = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        assert!(source.rescan().is_none(), "nothing changed");
        unchanged.push(started.elapsed());
    }
    println!("rescan, nothing changed: {}", summary(&mut unchanged));

    replace(&file, &original);
}

/// The CPU time this process has used (user and system), from `/proc/self/stat`; `None`
/// where that is not available.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces, and ends with `)`): utime and
    // stime are the 12th and 13th, in clock ticks (100 a second on Linux).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// The biggest regular file directly in `config` (or `config` itself if it is a file).
fn largest_file(config: &Path) -> PathBuf {
    if config.is_file() {
        return config.to_path_buf();
    }
    std::fs::read_dir(config)
        .expect("the config directory is readable")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
        .max_by_key(|entry| entry.metadata().map_or(0, |metadata| metadata.len()))
        .map(|entry| entry.path())
        .expect("the config directory has a file")
}

/// `text` with the first `x-generation` number past the middle incremented.
fn edited(text: &str) -> String {
    let middle = text.len() / 2;
    let found = text
        .get(middle..)
        .and_then(|tail| tail.find(MARKER))
        .map(|offset| middle + offset + MARKER.len());
    let Some(start) = found else {
        return format!("{text}# edit\n");
    };
    let digits = text[start..]
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(0);
    let number: u64 = text[start..start + digits].parse().unwrap_or(0);
    format!(
        "{}{}{}",
        &text[..start],
        number + 1,
        &text[start + digits..]
    )
}

/// Writes `text` to a hidden temporary next to `file` and renames it over `file`.
fn replace(file: &Path, text: &str) {
    let name = file.file_name().expect("a file name").to_string_lossy();
    let temporary = file.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&temporary, text).expect("write the temporary");
    std::fs::rename(&temporary, file).expect("rename over the file");
}

fn list(times: &[Duration]) -> String {
    times
        .iter()
        .map(|time| milliseconds(*time))
        .collect::<Vec<_>>()
        .join(", ")
}

fn summary(times: &mut [Duration]) -> String {
    times.sort();
    format!(
        "median {} (min {}, max {})",
        milliseconds(times[times.len() / 2]),
        milliseconds(times[0]),
        milliseconds(times[times.len() - 1])
    )
}

fn milliseconds(time: Duration) -> String {
    format!("{:.2} ms", time.as_secs_f64() * 1000.0)
}
