//! Two Linux network namespaces joined by a veth pair: the network of a partition run on real sockets.
//!
//! [`NetnsPair::create`] makes the namespaces `dotray-pt-<pid>-<n>-a` and `-b`, each with `lo` up and
//! one end of a veth pair (`10.213.0.1/24` on side A's end, `10.213.0.2/24` on side B's), and returns a
//! guard that deletes both namespaces, and with them the veth pair, when it is dropped: at the end of a
//! run, on an error and on a panic. [`NetnsPair::cut`] takes one end of the link down and
//! [`NetnsPair::restore`] brings it back up. A veth end that is down keeps its address, so the nodes of
//! one side still reach each other (traffic to a local address never leaves the namespace), while
//! dials across the link fail (unreachable on the side that is down, timed out on the other) and
//! established connections across it go silent, as when a cable is pulled.
//!
//! Namespaces left behind by an earlier run that could not clean up (killed with SIGKILL, say) are
//! recognised by their name, whose process id no longer runs; [`NetnsPair::create`] kills the processes
//! still inside them and deletes them first.
//!
//! Everything goes through the `ip` command of iproute2 and needs root; [`unavailable`] says why a run
//! cannot happen on this machine. Shared by `cargo xtask partition` and the `dotray` crate's
//! `netns_partition` test (included by path).
#![allow(dead_code, unreachable_pub)]

use std::io;
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

/// Prefix of the namespace names this module creates (and may delete when stale).
const NS_PREFIX: &str = "dotray-pt-";
/// Side A's and side B's address on the link: a private range that nothing else here uses (and if
/// something did, it would be outside these namespaces anyway).
pub const SIDE_ADDRS: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 213, 0, 1), Ipv4Addr::new(10, 213, 0, 2)];
const PREFIX_LEN: u8 = 24;
/// Pairs created by this process so far: part of the names, so that one process may hold several.
static CREATED: AtomicU32 = AtomicU32::new(0);
/// Held while cleaning and creating, so that one thread's cleaning never sees another's new pair.
static CREATING: Mutex<()> = Mutex::new(());

/// Why partition runs cannot happen here (not Linux, not root, no `ip`), or `None` when they may.
/// Creating the namespaces can still fail (a container without the capability); that error says why.
pub fn unavailable() -> Option<String> {
    if !cfg!(target_os = "linux") {
        return Some("network namespaces need Linux".to_owned());
    }
    match effective_uid() {
        Some(0) => {}
        Some(uid) => return Some(format!("not running as root (uid {uid}); network namespaces need root")),
        None => return Some("cannot read the effective uid from /proc/self/status".to_owned()),
    }
    match Command::new("ip").arg("-V").output() {
        Ok(out) if out.status.success() => None,
        _ => Some("the `ip` command (iproute2) is not installed".to_owned()),
    }
}

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    // "Uid:\t<real>\t<effective>\t<saved>\t<filesystem>"
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Two namespaces and the veth pair between them; deleted on drop.
#[derive(Debug)]
pub struct NetnsPair {
    /// Side A's and side B's namespace.
    pub ns: [String; 2],
    /// Side A's and side B's end of the veth pair (each inside its side's namespace).
    pub veth: [String; 2],
    /// Side A's and side B's address on the link.
    pub addrs: [Ipv4Addr; 2],
    /// Stale namespaces of earlier runs that were deleted before this pair was made.
    pub removed_stale: Vec<String>,
}

impl NetnsPair {
    /// Deletes stale namespaces of earlier runs, then creates the two namespaces and the link.
    pub fn create() -> io::Result<Self> {
        let _creating = CREATING.lock().unwrap_or_else(|e| e.into_inner());
        let removed_stale = clean_stale();
        let pid = std::process::id();
        let n = CREATED.fetch_add(1, Ordering::Relaxed);
        let pair = Self {
            ns: [format!("{NS_PREFIX}{pid}-{n}-a"), format!("{NS_PREFIX}{pid}-{n}-b")],
            // Interface names have at most 15 bytes: "dr" + pid (at most 7 digits) + "x" + n + side.
            veth: [format!("dr{pid}x{n}a"), format!("dr{pid}x{n}b")],
            addrs: SIDE_ADDRS,
            removed_stale,
        };
        // From here on, an early return drops `pair`, which deletes whatever was made.
        for ns in &pair.ns {
            ip(&["netns", "add", ns])?;
        }
        // Both ends are born inside their namespaces: nothing is ever left in the host's namespace.
        let [ns_a, ns_b] = &pair.ns;
        let [veth_a, veth_b] = &pair.veth;
        ip(&["link", "add", veth_a, "netns", ns_a, "type", "veth", "peer", "name", veth_b, "netns", ns_b])?;
        for side in 0..2 {
            let (ns, veth) = (&pair.ns[side], &pair.veth[side]);
            let addr = format!("{}/{PREFIX_LEN}", pair.addrs[side]);
            ip(&["-n", ns, "link", "set", "dev", "lo", "up"])?;
            ip(&["-n", ns, "addr", "add", &addr, "dev", veth])?;
            ip(&["-n", ns, "link", "set", "dev", veth, "up"])?;
        }
        Ok(pair)
    }

    /// Cuts the link: takes `side`'s end of the veth pair down (0 = A, 1 = B).
    pub fn cut(&self, side: usize) -> io::Result<()> {
        ip(&["-n", &self.ns[side], "link", "set", "dev", &self.veth[side], "down"])
    }

    /// Restores the link: brings `side`'s end of the veth pair up again.
    pub fn restore(&self, side: usize) -> io::Result<()> {
        ip(&["-n", &self.ns[side], "link", "set", "dev", &self.veth[side], "up"])
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        let existing = list();
        for ns in self.ns.iter().filter(|ns| existing.contains(ns)) {
            // The cluster has stopped its nodes already; this only catches what escaped it.
            kill_processes_in(ns);
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("warning: could not delete network namespace {ns}: {e}");
            }
        }
    }
}

/// Deletes the namespaces this module made in processes that no longer run (after killing what still
/// runs inside them); returns their names.
pub fn clean_stale() -> Vec<String> {
    let mut removed = Vec::new();
    for name in list() {
        let Some((pid, n)) = owner(&name) else { continue };
        let live = if pid == std::process::id() {
            // Ours, unless a process that had our pid before made it (callers hold `CREATING`).
            n < CREATED.load(Ordering::Relaxed)
        } else {
            std::path::Path::new(&format!("/proc/{pid}")).exists()
        };
        if live {
            continue;
        }
        kill_processes_in(&name);
        if ip(&["netns", "del", &name]).is_ok() {
            removed.push(name);
        }
    }
    removed
}

/// The process id and pair number in a name made by [`NetnsPair::create`], if `name` is one.
fn owner(name: &str) -> Option<(u32, u32)> {
    let rest = name.strip_prefix(NS_PREFIX)?;
    let rest = rest.strip_suffix("-a").or_else(|| rest.strip_suffix("-b"))?;
    let (pid, n) = rest.split_once('-')?;
    Some((pid.parse().ok()?, n.parse().ok()?))
}

/// The names of all named network namespaces (`ip netns list`).
fn list() -> Vec<String> {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else { return Vec::new() };
    // Lines look like "dotray-pt-123-0-a (id: 4)".
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// SIGKILLs every process inside namespace `ns` (`ip netns pids`).
fn kill_processes_in(ns: &str) {
    let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() else { return };
    for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        if pid.parse::<u32>().is_ok() {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
}

/// Runs `ip <args>`; an error carries the command line and what `ip` said.
fn ip(args: &[&str]) -> io::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("running `ip`: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        let said = String::from_utf8_lossy(&out.stderr);
        Err(io::Error::other(format!("`ip {}` failed: {}", args.join(" "), said.trim())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_owner_pid() {
        assert_eq!(owner("dotray-pt-4242-0-a"), Some((4242, 0)));
        assert_eq!(owner("dotray-pt-4242-17-b"), Some((4242, 17)));
        assert_eq!(owner("dotray-pt-4242-0-c"), None);
        assert_eq!(owner("dotray-pt-x-0-a"), None);
        assert_eq!(owner("other-4242-0-a"), None);
    }
}
