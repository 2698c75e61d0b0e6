//! `dotray-attack`: hostile peers against a running dotray network, for `cargo xtask attack`.
//!
//! Every attacker is a real peer: a key pair of its own, the real handshake and wire protocol, built
//! from dotray's own crates. One attack per run, against honest nodes given by address; the attacker
//! prints one JSON line saying what it did and what it saw. Whether the honest network survived is
//! judged by `cargo xtask attack` from the honest nodes' own logs, not from here.
//!
//! ```text
//! dotray-attack decode-amplification --target 127.0.0.1:2003
//! dotray-attack eclipse --target 127.0.0.1:2003 --secs 20
//! dotray-attack passive-poisoning --target 127.0.0.1:2003 --secs 20
//! dotray-attack reflection --target 127.0.0.1:2003 --secs 20
//! dotray-attack sybil-swarm --honest 127.0.0.1:2000,127.0.0.1:2001 --identities 80 --secs 20
//! ```
//!
//! Attackers listen on 127.0.0.66 and make up addresses on 127.66.0.0/16 only, so anything an honest
//! node reports there is theirs; the reflection attack's victim listens on 127.0.0.67.

mod decode;
mod eclipse;
mod poisoning;
mod reflection;
mod swarm;
mod sybil;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// The attacks this binary knows, by name.
const ATTACKS: [&str; 5] =
    ["decode-amplification", "eclipse", "passive-poisoning", "reflection", "sybil-swarm"];

const USAGE: &str = "\
usage: dotray-attack ATTACK [--target ADDR] [--honest ADDR,ADDR..] [--secs S] [--identities N]

attacks: decode-amplification, eclipse, passive-poisoning, reflection (against --target),
         sybil-swarm (against every --honest node, --identities at once)
Prints one JSON line: the attack and its figures.";

/// What the attacker did and saw, printed as one JSON object.
#[derive(Debug, Default)]
pub(crate) struct Report {
    figures: BTreeMap<&'static str, String>,
}

impl Report {
    /// Adds `n` to a count.
    pub(crate) fn add(&mut self, key: &'static str, n: u64) {
        let old: u64 = self.figures.get(key).and_then(|v| v.parse().ok()).unwrap_or(0);
        self.figures.insert(key, (old + n).to_string());
    }

    /// Sets a fraction.
    pub(crate) fn set_f64(&mut self, key: &'static str, value: f64) {
        self.figures.insert(key, format!("{value:.3}"));
    }

    fn json(&self, attack: &str) -> String {
        let mut fields = vec![format!("\"attack\":\"{attack}\"")];
        fields.extend(self.figures.iter().map(|(k, v)| format!("\"{k}\":{v}")));
        format!("{{{}}}", fields.join(","))
    }
}

struct Options {
    attack: String,
    target: Option<SocketAddr>,
    honest: Vec<SocketAddr>,
    secs: u64,
    identities: usize,
}

fn parse(args: &[String]) -> Result<Options> {
    let Some(attack) = args.first().filter(|a| ATTACKS.contains(&a.as_str())) else {
        bail!("{USAGE}");
    };
    let mut options =
        Options { attack: attack.clone(), target: None, honest: Vec::new(), secs: 20, identities: 80 };
    let mut rest = args[1..].iter();
    while let Some(flag) = rest.next() {
        let mut value = || rest.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--target" => options.target = Some(value()?.parse().context("--target takes ip:port")?),
            "--honest" => {
                for addr in value()?.split(',') {
                    options.honest.push(addr.parse().context("--honest takes ip:port,ip:port")?);
                }
            }
            "--secs" => options.secs = value()?.parse().context("--secs takes whole seconds")?,
            "--identities" => options.identities = value()?.parse().context("--identities takes a number")?,
            "-h" | "--help" => bail!("{USAGE}"),
            other => bail!("unknown flag {other}\n{USAGE}"),
        }
    }
    Ok(options)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = parse(&args)?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(options.secs);
    let target = || options.target.context("this attack needs --target");
    let mut report = Report::default();
    match options.attack.as_str() {
        "decode-amplification" => decode::run(target()?, &mut report).await?,
        "eclipse" => eclipse::run(target()?, deadline, &mut report).await?,
        "passive-poisoning" => poisoning::run(target()?, deadline, &mut report).await?,
        "reflection" => reflection::run(target()?, deadline, &mut report).await?,
        "sybil-swarm" => swarm::run(&options.honest, options.identities, deadline, &mut report).await?,
        other => bail!("unknown attack {other}"),
    }
    println!("{}", report.json(&options.attack));
    Ok(())
}
