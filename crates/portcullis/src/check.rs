//! `portcullis check`: compile offline and report.

use std::process::ExitCode;

use std::io::Write;

use compile::{CompileOptions, ConditionStatus};
use control::status_document;
use source::FileSource;

use crate::cli::CheckArgs;

pub(crate) fn check(args: &CheckArgs) -> ExitCode {
    let source = match FileSource::load(&args.config) {
        Ok(source) => source,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let update = source.current();
    let options = offline_options(&update, &args.controller_name, args.redis.is_some());
    // Status only: no `/config` view or endpoint plan to build.
    let status = compile::Compiler::build(&update.store, options).status();
    let file_errors: Vec<String> = update
        .files
        .iter()
        .filter_map(|f| {
            f.error
                .as_ref()
                .map(|e| format!("{}: {e}", f.path.display()))
        })
        .collect();
    if args.json {
        // As for the text report: a closed stdout (`check --json | head`) ends it, no panic.
        let _ = writeln!(
            std::io::stdout().lock(),
            "{}",
            status_document(&update, &status, &[])
        );
    } else {
        print_text(&status, &file_errors);
    }
    if status.is_healthy() && file_errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The compile options of an offline compile (`check`, `explain`): as `run` would compile.
pub(crate) fn offline_options(
    update: &source::SourceUpdate,
    controller_name: &str,
    redis: bool,
) -> CompileOptions {
    // The platform's CA certificates matter only to BackendTLSPolicies (`wellKnownCACertificates:
    // System`): a config without any is compiled without reading them.
    let system_roots = if update.store.backend_tls_policies.is_empty() {
        None
    } else {
        crate::run::system_roots()
    };
    CompileOptions {
        controller_name: controller_name.into(),
        system_roots,
        redis,
        ..CompileOptions::default()
    }
}

fn print_text(status: &compile::StatusReport, file_errors: &[String]) {
    // One line per object and condition set: tens of thousands at 10,000 routes, so written
    // through a buffer rather than a write per line. A closed stdout ends the report early.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let _ = write_text(&mut out, status, file_errors);
    let _ = out.flush();
}

fn write_text(
    out: &mut impl Write,
    status: &compile::StatusReport,
    file_errors: &[String],
) -> std::io::Result<()> {
    for object in &status.objects {
        let mark = if object.is_healthy() { "ok  " } else { "FAIL" };
        writeln!(out, "{mark} {}", object.label())?;
        let line = |conditions: &[compile::Condition]| {
            conditions
                .iter()
                .map(|c| {
                    let value = if c.status == ConditionStatus::True {
                        "True"
                    } else {
                        "False"
                    };
                    format!("{}={value} ({})", c.kind, c.reason)
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !object.conditions.is_empty() {
            writeln!(out, "       {}", line(&object.conditions))?;
        }
        for listener in &object.listeners {
            writeln!(
                out,
                "       listener {} (attachedRoutes={}): {}",
                listener.name,
                listener.attached_routes,
                line(&listener.conditions)
            )?;
        }
        for parent in &object.parents {
            let p = &parent.parent_ref;
            let mut at = format!("{} {}/{}", p.kind, p.namespace, p.name);
            if let Some(section) = &p.section_name {
                at.push_str(&format!(" sectionName={section}"));
            }
            if let Some(port) = p.port {
                at.push_str(&format!(" port={port}"));
            }
            writeln!(out, "       parent {at}: {}", line(&parent.conditions))?;
        }
        for ancestor in &object.ancestors {
            let a = &ancestor.ancestor_ref;
            writeln!(
                out,
                "       ancestor {} {}/{}: {}",
                a.kind,
                a.namespace,
                a.name,
                line(&ancestor.conditions)
            )?;
        }
    }
    let problems = status.problems();
    if !problems.is_empty() || !file_errors.is_empty() {
        writeln!(out)?;
        writeln!(out, "problems:")?;
        for problem in file_errors.iter().chain(&problems) {
            writeln!(out, "  {problem}")?;
        }
    }
    Ok(())
}
