//! `cargo xtask`: the project's automation, written in Rust so it runs wherever cargo does.
//!
//! Each command lives in its own module with its help text (`HELP`), which `--help` prints and the
//! overview (`cargo xtask help`) summarises. Errors print as `error: ...` on stderr: exit code 2 for a
//! command line that does not parse (with the command's usage), 1 when the command itself fails.

mod attack;
mod bench;
mod cargo_build;
mod chaos;
mod cli;
mod codegen;
mod demo;
mod demo_log;
mod demo_net;
mod enter_key;
mod netns;
mod overlay;
mod partition;
mod partition_scenario;
mod recovery;
mod sim;

use std::process::ExitCode;

use cli::{Help, Stop};

/// A command: its help and its entry point.
struct Command {
    help: &'static Help,
    run: fn(&[String]) -> anyhow::Result<()>,
}

/// Every command, in the overview's order.
static COMMANDS: [Command; 7] = [
    Command { help: &codegen::HELP, run: codegen::run },
    Command { help: &sim::HELP, run: sim::run },
    Command { help: &demo::HELP, run: demo::run },
    Command { help: &bench::HELP, run: bench::run },
    Command { help: &chaos::HELP, run: chaos::run },
    Command { help: &partition::HELP, run: partition::run },
    Command { help: &attack::HELP, run: attack::run },
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((name, rest)) = args.split_first() else {
        print!("{}", overview());
        return ExitCode::SUCCESS;
    };
    if name == "help" || cli::is_help(name) {
        return match rest.first() {
            None => {
                print!("{}", overview());
                ExitCode::SUCCESS
            }
            Some(name) => match find(name) {
                Some(command) => {
                    print!("{}", command.help.text());
                    ExitCode::SUCCESS
                }
                None => unknown_command(name),
            },
        };
    }
    let Some(command) = find(name) else { return unknown_command(name) };
    match (command.run)(rest) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => report(&error),
    }
}

fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.help.name == name)
}

/// `cargo xtask help`: every command's usage and what it does.
fn overview() -> String {
    let mut out = String::from(
        "usage: cargo xtask <command> [options]\n       cargo xtask <command> --help   (the command's options)\n\ncommands:\n",
    );
    for command in &COMMANDS {
        out.push_str(&command.help.summary());
    }
    out.push_str("  help [COMMAND]\n        this text, or the command's help\n");
    out
}

fn unknown_command(name: &str) -> ExitCode {
    eprintln!("error: unknown command `{name}`\n");
    eprint!("{}", overview());
    ExitCode::from(2)
}

/// Prints how a command ended early or failed, and returns the exit code.
fn report(error: &anyhow::Error) -> ExitCode {
    match error.downcast_ref::<Stop>() {
        Some(Stop::Help(help)) => {
            print!("{}", help.text());
            ExitCode::SUCCESS
        }
        Some(Stop::Misuse { help, message }) => {
            eprintln!("error: {message}\n");
            eprint!("{}", help.usage());
            eprintln!("(`cargo xtask {} --help` lists the options)", help.name);
            ExitCode::from(2)
        }
        None => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overview_lists_every_command_as_its_help_does() {
        let overview = overview();
        for command in &COMMANDS {
            assert!(overview.contains(&command.help.summary()), "{} is missing", command.help.name);
            assert!(command.help.text().starts_with(&command.help.usage()), "{}", command.help.name);
            for line in command.help.usage {
                assert!(line.starts_with(command.help.name), "{line:?} is not a {} line", command.help.name);
            }
        }
    }

    #[test]
    fn help_texts_fit_a_terminal() {
        let texts = COMMANDS.iter().map(|c| c.help.text()).chain([overview()]);
        for line in texts.collect::<Vec<_>>().iter().flat_map(|t| t.lines()) {
            assert!(line.chars().count() <= 100, "too wide: {line:?}");
        }
    }

    #[test]
    fn command_names_are_unique_and_found() {
        for command in &COMMANDS {
            assert!(std::ptr::eq(find(command.help.name).map_or(std::ptr::null(), |c| c), command));
        }
        assert!(find("help").is_none() && find("bogus").is_none());
    }

    #[test]
    fn a_failure_is_exit_code_1_and_a_misuse_2() {
        assert_eq!(report(&anyhow::anyhow!("it broke")), ExitCode::FAILURE);
        assert_eq!(report(&cli::misuse(&demo::HELP, "unknown flag `--x`")), ExitCode::from(2));
        // Found through added context too.
        let wrapped = cli::misuse(&demo::HELP, "bad").context("while starting");
        assert_eq!(report(&wrapped), ExitCode::from(2));
    }
}
