//! `crdgen DIR` writes the CRDs of our kinds into DIR (`deploy/crds` in this repository);
//! `crdgen --check DIR` exits non-zero when DIR differs from what it would write.

use std::path::Path;
use std::process::ExitCode;

use crdgen::CrdgenError;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (check, dir) = match args.as_slice() {
        [flag, dir] if flag == "--check" => (true, dir),
        [dir] if !dir.starts_with('-') => (false, dir),
        _ => {
            eprintln!("usage: crdgen [--check] DIR   (DIR: deploy/crds)");
            return ExitCode::from(2);
        }
    };
    match run(check, Path::new(dir)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("crdgen: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Writes (or with `check`, compares) every CRD file in `dir`. `Ok(false)`: a check found a
/// difference (each named on stderr).
fn run(check: bool, dir: &Path) -> Result<bool, CrdgenError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| CrdgenError::Io { path, source }
    };
    let mut same = true;
    for (name, text) in crdgen::files()? {
        let path = dir.join(&name);
        if check {
            let current = std::fs::read_to_string(&path).map_err(io(&path))?;
            if current != text {
                eprintln!("{} differs from the generator's output", path.display());
                same = false;
            }
        } else {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
            std::fs::write(&path, text).map_err(io(&path))?;
            println!("wrote {}", path.display());
        }
    }
    Ok(same)
}
