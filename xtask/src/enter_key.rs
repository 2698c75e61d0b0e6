//! Presses of Enter on the terminal that runs a command, read as requests (`cargo xtask demo` prints the
//! overlay on each). Only when stdin is a terminal: input from a pipe or a file is never read.

use std::io::IsTerminal;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Instant;

/// Enter presses, read by a thread of their own.
pub(crate) struct EnterKey {
    presses: Option<Receiver<()>>,
}

impl EnterKey {
    /// Starts reading lines from stdin when it is a terminal; otherwise no press is ever reported.
    pub(crate) fn listen() -> Self {
        if !std::io::stdin().is_terminal() {
            return Self { presses: None };
        }
        let (tx, rx) = mpsc::channel();
        // Blocks on stdin for as long as the process runs; it ends with the process.
        std::thread::spawn(move || {
            for line in std::io::stdin().lines() {
                if line.is_err() || tx.send(()).is_err() {
                    break;
                }
            }
        });
        Self { presses: Some(rx) }
    }

    /// True while presses can be reported.
    pub(crate) fn is_listening(&self) -> bool {
        self.presses.is_some()
    }

    /// Waits until `deadline`, or returns `true` as soon as Enter is pressed.
    pub(crate) fn wait(&mut self, deadline: Instant) -> bool {
        if let Some(presses) = &self.presses {
            match presses.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(()) => return true,
                Err(RecvTimeoutError::Timeout) => return false,
                // End of input (Ctrl-D): stop listening, wait out the time.
                Err(RecvTimeoutError::Disconnected) => self.presses = None,
            }
        }
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
        false
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_press_ends_the_wait_and_the_end_of_input_stops_listening() {
        let (tx, rx) = mpsc::channel();
        let mut keys = EnterKey { presses: Some(rx) };
        tx.send(()).expect("send");
        let far = Instant::now() + Duration::from_secs(60);
        assert!(keys.wait(far), "a press is reported at once");
        let soon = Instant::now() + Duration::from_millis(20);
        assert!(!keys.wait(soon) && Instant::now() >= soon, "no press: waits until the deadline");
        drop(tx);
        assert!(!keys.wait(Instant::now() + Duration::from_millis(20)));
        assert!(!keys.is_listening());
    }
}
