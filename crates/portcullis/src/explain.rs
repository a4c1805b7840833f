//! `portcullis explain`: compile a config offline and explain one request against it
//! (`compile::explain` does the work; this is only input and output).

use std::io::Write;
use std::process::ExitCode;

use compile::explain::Outcome;
use compile::{Compiler, ExplainRequest};
use source::FileSource;

use crate::check::offline_options;
use crate::cli::ExplainArgs;

/// Exit code when the input is bad (URL, header, gateway, config that cannot be read).
const BAD_INPUT: u8 = 2;

pub(crate) fn explain(args: &ExplainArgs) -> ExitCode {
    let request = match ExplainRequest::parse(
        &args.method,
        &args.url,
        &args.headers,
        args.gateway.as_deref(),
    ) {
        Ok(request) => request,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(BAD_INPUT);
        }
    };
    let source = match FileSource::load(&args.config) {
        Ok(source) => source,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(BAD_INPUT);
        }
    };
    let update = source.current();
    // A file that fails to parse is left out, as `run` leaves it out: said, not fatal.
    for file in &update.files {
        if let Some(error) = &file.error {
            eprintln!("warning: {}: {error}", file.path.display());
        }
    }
    let options = offline_options(&update, &args.controller_name, args.redis.is_some());
    let compiler = Compiler::build(&update.store, options);
    let explanation = match compiler.explain(&update.store, &request) {
        Ok(explanation) => explanation,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(BAD_INPUT);
        }
    };
    // A closed stdout (`explain ... | head`) ends the output, no panic.
    let mut out = std::io::stdout().lock();
    let _ = if args.json {
        writeln!(out, "{}", explanation.to_json())
    } else {
        write!(out, "{explanation}")
    };
    let _ = out.flush();
    if explanation.outcome == Outcome::Matched {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
