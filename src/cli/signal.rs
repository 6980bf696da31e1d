//! Waiting for the user (or a service manager) to ask a run to stop.

/// Ctrl-C anywhere; on Unix also SIGTERM, which is how service managers
/// and `kill` ask.
pub async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate = signal(SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async {
                match terminate.as_mut() {
                    Some(signal) => { signal.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {}
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_err() {
            // No console to listen to: nothing can ask, so never stop.
            std::future::pending::<()>().await;
        }
    }
}
