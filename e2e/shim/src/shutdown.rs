//! Stop signals, as Kubernetes sends them.
//!
//! The kubelet stops a container with SIGTERM and, after the pod's grace period, SIGKILL. A
//! server that exits at once on SIGTERM drops every request in flight, so SIGTERM (and SIGINT)
//! ask for a graceful drain; SIGQUIT, or a second SIGTERM, means "now".

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// What was asked, in order of urgency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    Running,
    Drain,
    Now,
}

/// Watches the stop signals; the receiver reports the latest request.
pub fn watch_signals() -> std::io::Result<watch::Receiver<Stop>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut quit = signal(SignalKind::quit())?;
    let (sender, receiver) = watch::channel(Stop::Running);
    tokio::spawn(async move {
        loop {
            let urgent = tokio::select! {
                _ = term.recv() => false,
                _ = int.recv() => false,
                _ = quit.recv() => true,
            };
            let next = if urgent || *sender.borrow() != Stop::Running { Stop::Now } else { Stop::Drain };
            if sender.send(next).is_err() || next == Stop::Now {
                return;
            }
        }
    });
    Ok(receiver)
}
