//! Waiting for the user (or a service manager) to ask a run to stop.

/// Ctrl-C anywhere; on Unix also SIGTERM, which is how service managers
/// and `kill` ask.
///
/// The handlers are installed when this is made, not when it is first
/// awaited: until a handler is in place the signal's default action kills
/// the process, so a command must listen before it says it is ready (the
/// emulator's `listening on` line) or starts work it should stop cleanly.
/// Needs a Tokio runtime.
pub struct StopSignals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(windows)]
    ctrl_c: Option<tokio::signal::windows::CtrlC>,
}

impl StopSignals {
    /// Installs the handlers now. One that cannot be installed (no console,
    /// say) is left out: nothing can send that signal to ask.
    pub fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Self {
                interrupt: signal(SignalKind::interrupt()).ok(),
                terminate: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(windows)]
        {
            Self {
                ctrl_c: tokio::signal::windows::ctrl_c().ok(),
            }
        }
        #[cfg(not(any(unix, windows)))]
        {
            Self {}
        }
    }

    /// Returns when one of the signals arrives.
    #[cfg_attr(not(any(unix, windows)), allow(unused_mut))]
    pub async fn requested(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = recv(self.interrupt.as_mut()) => {}
            _ = recv(self.terminate.as_mut()) => {}
        }
        #[cfg(windows)]
        match self.ctrl_c.as_mut() {
            Some(ctrl_c) => {
                ctrl_c.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
        #[cfg(not(any(unix, windows)))]
        std::future::pending::<()>().await
    }
}

#[cfg(unix)]
async fn recv(signal: Option<&mut tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}
