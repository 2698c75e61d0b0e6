//! `dotray-attack`: hostile peers against a running dotray network, for `cargo xtask attack`.
//!
//! One attack per run (see the library's modules), against honest nodes given by address; the attacker
//! prints one JSON line saying what it did and what it saw.
//!
//! ```text
//! dotray-attack decode-amplification --target 127.0.0.1:2003
//! dotray-attack direct-flood --target 127.0.0.1:2003 --secs 20
//! dotray-attack eclipse --target 127.0.0.1:2003 --secs 20
//! dotray-attack passive-poisoning --target 127.0.0.1:2003 --secs 20
//! dotray-attack reflection --target 127.0.0.1:2003 --secs 20
//! dotray-attack reorder-flood --honest 127.0.0.1:2000,127.0.0.1:2001 --secs 20
//! dotray-attack slot-exhaustion --target 127.0.0.1:2003 --secs 20
//! dotray-attack slow-neighbour --target 127.0.0.1:2003 --honest 127.0.0.1:2000,.. --secs 20
//! dotray-attack stream-table-capture --target 127.0.0.1:2003 --honest 127.0.0.1:2000,.. --secs 20
//! dotray-attack sybil-swarm --honest 127.0.0.1:2000,127.0.0.1:2001 --identities 80 --secs 20
//! ```
//!

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use dotray_attack::{
    ATTACKS, Report, decode, directs, eclipse, poisoning, reflection, reorder, slots, slow, streams, swarm,
};

const USAGE: &str = "\
usage: dotray-attack ATTACK [--target ADDR] [--honest ADDR,ADDR..] [--secs S] [--identities N]

attacks: decode-amplification, direct-flood, eclipse, passive-poisoning, reflection,
         slot-exhaustion (against --target), slow-neighbour (--target, and one of --honest),
         stream-table-capture (against --target and every --honest node),
         reorder-flood (against every --honest node),
         sybil-swarm (against every --honest node, --identities at once)
Prints one JSON line: the attack and its figures.";

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
    let outcome = match options.attack.as_str() {
        "decode-amplification" => decode::run(target()?, &mut report).await,
        "direct-flood" => directs::run(target()?, deadline, &mut report).await,
        "eclipse" => eclipse::run(target()?, deadline, &mut report).await,
        "passive-poisoning" => poisoning::run(target()?, deadline, &mut report).await,
        "reflection" => reflection::run(target()?, deadline, &mut report).await,
        "reorder-flood" => reorder::run(&options.honest, deadline, &mut report).await,
        "slot-exhaustion" => slots::run(target()?, deadline, &mut report).await,
        "slow-neighbour" => slow::run(target()?, &options.honest, deadline, &mut report).await,
        "stream-table-capture" => streams::run(target()?, &options.honest, deadline, &mut report).await,
        "sybil-swarm" => swarm::run(&options.honest, options.identities, deadline, &mut report).await,
        other => bail!("unknown attack {other}"),
    };
    outcome.map_err(|e| anyhow::anyhow!("{}: {e}", options.attack))?;
    println!("{}", report.json(&options.attack));
    Ok(())
}
