//! `portcullis check`: compile offline and report.

use std::process::ExitCode;

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
    let options = CompileOptions {
        controller_name: args.controller_name.clone(),
        system_roots: crate::run::system_roots(),
        ..CompileOptions::default()
    };
    let compiled = compile::compile(&update.store, &options);
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
        println!("{}", status_document(&update, &compiled.status, &[]));
    } else {
        print_text(&compiled.status, &file_errors);
    }
    if compiled.status.is_healthy() && file_errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_text(status: &compile::StatusReport, file_errors: &[String]) {
    for object in &status.objects {
        let mark = if object.is_healthy() { "ok  " } else { "FAIL" };
        println!("{mark} {}", object.label());
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
            println!("       {}", line(&object.conditions));
        }
        for listener in &object.listeners {
            println!(
                "       listener {} (attachedRoutes={}): {}",
                listener.name,
                listener.attached_routes,
                line(&listener.conditions)
            );
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
            println!("       parent {at}: {}", line(&parent.conditions));
        }
        for ancestor in &object.ancestors {
            let a = &ancestor.ancestor_ref;
            println!(
                "       ancestor {} {}/{}: {}",
                a.kind,
                a.namespace,
                a.name,
                line(&ancestor.conditions)
            );
        }
    }
    let problems = status.problems();
    if !problems.is_empty() || !file_errors.is_empty() {
        println!();
        println!("problems:");
        for problem in file_errors.iter().chain(&problems) {
            println!("  {problem}");
        }
    }
}
