//! Accepting connections and serving HTTP/1.1 on them, with the limits that keep slow
//! or greedy clients from holding the server: a request's headers must arrive within
//! `header_timeout` (which also closes a kept-alive connection idle that long), and one
//! client address may hold at most `per_address` connections; more are closed at once.
//!
//! A slowloris client (headers sent a byte at a time) is thus cut off after
//! `header_timeout`, and cannot open connections without bound meanwhile. Behind a
//! reverse proxy every client shares the proxy's address: turn the per-address cap off
//! there (`max_connections_per_address = 0`) and limit at the proxy.

use super::guard::client_key;
use axum::Router;
use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

/// Limits on connections.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Time a client has to send a request's headers, from when the server starts
    /// reading them (on a kept-alive connection: from the end of the last response).
    pub header_timeout: Duration,
    /// Connections one client address may hold open; 0 turns the cap off.
    pub per_address: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            per_address: 256,
        }
    }
}

/// Open connections per client address.
#[derive(Default)]
struct OpenConnections(Mutex<HashMap<IpAddr, usize>>);

/// One client's hold on a connection slot, given back when the connection ends.
struct Slot {
    open: Arc<OpenConnections>,
    client: IpAddr,
}

impl OpenConnections {
    /// A slot for `client`, unless it already holds `cap` connections.
    fn take(self: &Arc<Self>, client: IpAddr, cap: usize) -> Option<Slot> {
        let mut open = self.0.lock().expect("connection counts lock");
        let count = open.entry(client).or_default();
        if cap > 0 && *count >= cap {
            return None;
        }
        *count += 1;
        Some(Slot {
            open: self.clone(),
            client,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.0.lock().expect("connection counts lock");
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes; then `close` turns true
/// (open event streams end), requests in progress finish, and kept-alive connections
/// close. Returns once every connection has closed.
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    close: watch::Sender<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let open = Arc::new(OpenConnections::default());
    // Every connection task holds a receiver; `closed()` on the sender is all of them gone.
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: the next accept may succeed.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = open.take(client_key(peer.ip()), limits.per_address) else {
            continue; // dropping the stream closes it
        };
        let _ = stream.set_nodelay(true);
        // Peer addresses feed the bad-request budget.
        let service = router
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(peer));
                request
            });
        let mut stopping = stopping.clone();
        let http = http.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let connection =
                http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = stopping.wait_for(|stop| *stop) => {}
            }
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        });
    }
    let _ = close.send(true);
    let _ = stop.send(true);
    drop(stopping);
    stop.closed().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_holds_at_most_its_cap_and_slots_come_back() {
        let open = Arc::new(OpenConnections::default());
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = open.take(a, 2).unwrap();
        let _second = open.take(a, 2).unwrap();
        assert!(
            open.take(a, 2).is_none(),
            "a third connection is over the cap"
        );
        assert!(open.take(b, 2).is_some(), "another client has its own cap");
        drop(first);
        assert!(
            open.take(a, 2).is_some(),
            "a closed connection frees its slot"
        );
        let unlimited: Vec<_> = (0..1000).map(|_| open.take(b, 0).unwrap()).collect();
        drop(unlimited);
        assert!(
            !open.0.lock().unwrap().contains_key(&b),
            "no counts are kept for no one"
        );
    }
}
