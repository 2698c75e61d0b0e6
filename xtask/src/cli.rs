//! The command line shared by every command: each command's help text ([`Help`], also its entry in
//! `cargo xtask help`), reading its flags ([`Flags`]), and the two ways a command line ends before the
//! command runs ([`Stop`]): `--help`, which `main` prints to stdout with exit code 0, and a misuse, which
//! it prints to stderr with the command's usage and exit code 2.

use std::fmt;
use std::str::FromStr;

/// A command's help: printed by `cargo xtask <command> --help`, summarised in `cargo xtask help`.
#[derive(Debug)]
pub(crate) struct Help {
    /// The command's name, as typed after `cargo xtask`.
    pub(crate) name: &'static str,
    /// The command lines it accepts, one per entry, without the leading `cargo xtask`.
    pub(crate) usage: &'static [&'static str],
    /// What it does, a few lines long (the overview shows it under the usage).
    pub(crate) about: &'static str,
    /// The options and notes that follow in `--help`.
    pub(crate) details: &'static str,
}

impl Help {
    /// The usage lines, `usage: cargo xtask ...` then aligned continuation lines.
    pub(crate) fn usage(&self) -> String {
        let mut out = String::new();
        for (i, line) in self.usage.iter().enumerate() {
            let lead = if i == 0 { "usage: " } else { "       " };
            out.push_str(&format!("{lead}cargo xtask {line}\n"));
        }
        out
    }

    /// The whole `--help` text: usage, what the command does, its options.
    pub(crate) fn text(&self) -> String {
        format!("{}\n{}\n\n{}", self.usage(), self.about.trim_end(), self.details)
    }

    /// The command's entry in the overview: its usage lines, then what it does, indented.
    pub(crate) fn summary(&self) -> String {
        let mut out = String::new();
        for line in self.usage {
            out.push_str(&format!("  {line}\n"));
        }
        for line in self.about.lines() {
            out.push_str(&format!("        {line}\n"));
        }
        out
    }
}

/// Why a command stopped before it ran.
#[derive(Debug)]
pub(crate) enum Stop {
    /// `--help` or `-h`: print the command's help.
    Help(&'static Help),
    /// A command line that does not parse: print the message and the command's usage.
    Misuse {
        /// The command's help (its usage is printed with the message).
        help: &'static Help,
        /// What is wrong, naming the flag or value.
        message: String,
    },
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Help(help) => write!(f, "help for `cargo xtask {}` requested", help.name),
            Stop::Misuse { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for Stop {}

/// True for the flags that ask for help.
pub(crate) fn is_help(arg: &str) -> bool {
    arg == "--help" || arg == "-h"
}

/// Reads a command's flags in order.
pub(crate) struct Flags<'a> {
    help: &'static Help,
    args: std::slice::Iter<'a, String>,
}

impl<'a> Flags<'a> {
    /// The flags `args` of the command described by `help`.
    pub(crate) fn new(help: &'static Help, args: &'a [String]) -> Self {
        Self { help, args: args.iter() }
    }

    /// The next argument, or `None` at the end; `--help` and `-h` stop the command with [`Stop::Help`].
    pub(crate) fn next(&mut self) -> anyhow::Result<Option<&'a str>> {
        match self.args.next() {
            Some(arg) if is_help(arg) => Err(Stop::Help(self.help).into()),
            next => Ok(next.map(String::as_str)),
        }
    }

    /// The value that follows `flag`, parsed; `what` says what it must be ("a number", "seconds").
    pub(crate) fn value<T: FromStr>(&mut self, flag: &str, what: &str) -> anyhow::Result<T> {
        let Some(value) = self.args.next() else {
            return Err(self.misuse(format!("{flag} needs a value ({what})")));
        };
        value.parse().map_err(|_| self.misuse(format!("{flag} takes {what}, not `{value}`")))
    }

    /// The error for a flag the command does not know (or an argument where a flag should be).
    pub(crate) fn unknown(&self, flag: &str) -> anyhow::Error {
        if flag.starts_with('-') {
            self.misuse(format!("unknown flag `{flag}`"))
        } else {
            self.misuse(format!("unexpected argument `{flag}` (flags start with --)"))
        }
    }

    /// A misuse of this command, described by `message`.
    pub(crate) fn misuse(&self, message: impl Into<String>) -> anyhow::Error {
        misuse(self.help, message)
    }
}

/// A misuse of the command described by `help`.
pub(crate) fn misuse(help: &'static Help, message: impl Into<String>) -> anyhow::Error {
    Stop::Misuse { help, message: message.into() }.into()
}

/// Test helpers: what a parse stopped with.
#[cfg(test)]
pub(crate) mod testing {
    use super::Stop;

    /// The arguments as the command receives them.
    pub(crate) fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    /// Panics unless `result` stopped for `--help` with the help of `name`.
    pub(crate) fn assert_help<T>(result: anyhow::Result<T>, name: &str) {
        match result.err().as_ref().and_then(|e| e.downcast_ref::<Stop>()) {
            Some(Stop::Help(help)) => assert_eq!(help.name, name),
            other => panic!("expected the help of {name}, got {other:?}"),
        }
    }

    /// Panics unless `result` is a misuse whose message contains `needle`; returns the message.
    pub(crate) fn assert_misuse<T>(result: anyhow::Result<T>, needle: &str) -> String {
        match result.err().as_ref().and_then(|e| e.downcast_ref::<Stop>()) {
            Some(Stop::Misuse { message, .. }) => {
                assert!(message.contains(needle), "{message:?} does not mention {needle:?}");
                message.clone()
            }
            other => panic!("expected a misuse mentioning {needle:?}, got {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{args, assert_help, assert_misuse};
    use super::*;

    static HELP: Help = Help {
        name: "thing",
        usage: &["thing [--count N]", "thing --fast"],
        about: "does a thing\nquickly",
        details: "options:\n  --count N   how many\n",
    };

    fn parse(args: &[String]) -> anyhow::Result<u32> {
        let mut flags = Flags::new(&HELP, args);
        let mut count = 1;
        while let Some(flag) = flags.next()? {
            match flag {
                "--count" => count = flags.value(flag, "a number")?,
                other => return Err(flags.unknown(other)),
            }
        }
        Ok(count)
    }

    #[test]
    fn help_anywhere_a_flag_may_stand_stops_the_parse() {
        assert_help(parse(&args("--help")), "thing");
        assert_help(parse(&args("-h")), "thing");
        assert_help(parse(&args("--count 3 --help")), "thing");
        assert_eq!(parse(&args("--count 3")).ok(), Some(3));
    }

    #[test]
    fn misuses_name_the_flag_or_value() {
        assert_misuse(parse(&args("--bogus")), "unknown flag `--bogus`");
        assert_misuse(parse(&args("3")), "unexpected argument `3`");
        assert_misuse(parse(&args("--count")), "--count needs a value");
        assert_misuse(parse(&args("--count many")), "--count takes a number, not `many`");
        // A value is taken as given, even one that looks like a flag.
        assert_misuse(parse(&args("--count --help")), "not `--help`");
    }

    #[test]
    fn texts_show_every_usage_line() {
        assert_eq!(HELP.usage(), "usage: cargo xtask thing [--count N]\n       cargo xtask thing --fast\n");
        let text = HELP.text();
        assert!(text.starts_with(&HELP.usage()), "{text}");
        assert!(text.contains("does a thing\nquickly\n\noptions:"), "{text}");
        assert_eq!(
            HELP.summary(),
            "  thing [--count N]\n  thing --fast\n        does a thing\n        quickly\n"
        );
    }
}

/// A seed from the clock, for commands whose `--seed` defaults to "new each run" (printed, to replay).
pub(crate) fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}
