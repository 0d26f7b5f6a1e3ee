//! Sending a plugin's admitted `wasi:http` requests: HTTP/1.1 connections are kept alive
//! and reused per origin, so a connector that calls the same API again skips the TCP
//! (and TLS) handshake. Whether a request may leave at all is `net`'s decision, made
//! before it gets here.

use bytes::Bytes;
use http::uri::Scheme;
use http::{Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

/// How long a connection may sit unused before it is closed instead of reused. Servers
/// close idle connections after 5 (Node.js) to 75 (nginx) seconds, and a request sent
/// just as the server closes fails; staying under the shortest avoids most of that race,
/// and a connection busy with a workflow's calls is reused long before.
const IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// How long a connection taken from the pool may take to become ready for the next
/// request (it was given back as its last response ended); a new one is opened instead.
const READY_WAIT: Duration = Duration::from_millis(50);

/// Idle connections kept per origin; more than this are closed when they come back.
const MAX_IDLE_PER_ORIGIN: usize = 64;

/// Where a connection goes: scheme and `host:port`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Origin {
    https: bool,
    /// `host:port`, the port always written.
    address: String,
}

impl Origin {
    fn of(uri: &Uri) -> Result<Origin, Error> {
        let authority = uri.authority().ok_or(Error::HttpRequestUriInvalid)?;
        let https = uri.scheme() == Some(&Scheme::HTTPS);
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        Ok(Origin {
            https,
            address: format!("{}:{port}", authority.host()),
        })
    }
}

struct Idle {
    sender: SendRequest<WasiBody>,
    since: Instant,
}

impl Idle {
    /// Still open, and not idle so long that the server may be closing it.
    fn reusable(&self) -> bool {
        !self.sender.is_closed() && self.since.elapsed() <= IDLE_TIMEOUT
    }
}

/// Kept-alive connections to the origins plugins call, shared by every call of a
/// [`Runtime`](super::Runtime).
#[derive(Default)]
pub(crate) struct ConnectionPool {
    idle: Mutex<HashMap<Origin, Vec<Idle>>>,
    tls: OnceLock<tokio_rustls::TlsConnector>,
}

/// The timeouts of one request, every one already bounded by the call's deadline.
#[derive(Clone, Copy)]
pub(crate) struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub between_bytes: Duration,
}

impl Timeouts {
    /// The guest's timeouts, each capped at `cap`.
    pub fn capped(options: Option<RequestOptions>, cap: Duration) -> Timeouts {
        let options = options.unwrap_or_default();
        let bound = |t: Option<Duration>| t.map_or(cap, |t| t.min(cap));
        Timeouts {
            connect: bound(options.connect_timeout),
            first_byte: bound(options.first_byte_timeout),
            // tokio's interval panics on zero.
            between_bytes: bound(options.between_bytes_timeout).max(Duration::from_nanos(1)),
        }
    }
}

impl ConnectionPool {
    /// Sends `request` on an idle connection to its origin, or a new one. A reused
    /// connection the server closed in the meantime hands the request back unsent, and
    /// it goes out on a new connection instead.
    pub async fn send(
        self: Arc<Self>,
        mut request: Request<WasiBody>,
        timeouts: Timeouts,
    ) -> Result<Response<WasiBody>, Error> {
        let origin = Origin::of(request.uri())?;
        // The request line carries only the path: scheme and host are for proxies.
        let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
        *request.uri_mut() = Uri::builder()
            .path_and_query(path)
            .build()
            .map_err(|_| Error::HttpRequestUriInvalid)?;

        loop {
            let (mut sender, reused) = match self.take_idle(&origin).await {
                Some(sender) => (sender, true),
                None => (self.connect(&origin, timeouts.connect).await?, false),
            };
            let sent = tokio::time::timeout(timeouts.first_byte, sender.try_send_request(request))
                .await
                .map_err(|_| Error::ConnectionReadTimeout)?;
            match sent {
                Ok(response) => {
                    let mut between_bytes = tokio::time::interval(timeouts.between_bytes);
                    between_bytes.reset();
                    let pool = self.clone();
                    return Ok(response.map(|incoming| {
                        PooledBody {
                            incoming,
                            between_bytes,
                            connection: Some((pool, origin, sender)),
                        }
                        .boxed_unsync()
                    }));
                }
                Err(mut failed) => match failed.take_message() {
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(map_hyper_error(failed.into_error())),
                },
            }
        }
    }

    /// The most recently used live connection to `origin`, once it can take a request.
    async fn take_idle(&self, origin: &Origin) -> Option<SendRequest<WasiBody>> {
        loop {
            let idle = {
                let mut pool = self.idle.lock().expect("connection pool lock");
                let idle = pool.get_mut(origin)?;
                let next = idle.pop();
                if idle.is_empty() {
                    pool.remove(origin);
                }
                next?
            };
            if !idle.reusable() {
                continue;
            }
            let mut sender = idle.sender;
            // Just returned, the connection may still be finishing the last response.
            if let Ok(Ok(())) = tokio::time::timeout(READY_WAIT, sender.ready()).await {
                return Some(sender);
            }
        }
    }

    fn put_idle(&self, origin: Origin, sender: SendRequest<WasiBody>) {
        let mut pool = self.idle.lock().expect("connection pool lock");
        let idle = pool.entry(origin).or_default();
        idle.retain(Idle::reusable);
        if idle.len() < MAX_IDLE_PER_ORIGIN {
            idle.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    async fn connect(
        &self,
        origin: &Origin,
        wait: Duration,
    ) -> Result<SendRequest<WasiBody>, Error> {
        let handshake = async {
            let tcp = TcpStream::connect(&origin.address)
                .await
                .map_err(Error::Connect)?;
            // Requests are written whole; do not hold their last segment back.
            let _ = tcp.set_nodelay(true);
            let stream: Box<dyn Stream> = if origin.https {
                let name = server_name(&origin.address)?;
                Box::new(self.tls().connect(name, tcp).await.map_err(Error::Tls)?)
            } else {
                Box::new(tcp)
            };
            let (sender, connection) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(Error::from)?;
            // The connection outlives this request: it goes back to the pool and ends
            // when the server closes it or its last sender is dropped.
            tokio::spawn(connection);
            Ok(sender)
        };
        tokio::time::timeout(wait, handshake)
            .await
            .map_err(|_| Error::ConnectionTimeout)?
    }

    fn tls(&self) -> &tokio_rustls::TlsConnector {
        self.tls.get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            let config = rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth();
            tokio_rustls::TlsConnector::from(Arc::new(config))
        })
    }
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// The name the server's certificate must carry: the host of `host:port`, or its IP.
fn server_name(address: &str) -> Result<rustls::pki_types::ServerName<'static>, Error> {
    use rustls::pki_types::ServerName;
    if let Ok(socket) = address.parse::<std::net::SocketAddr>() {
        return Ok(ServerName::from(socket.ip()));
    }
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    ServerName::try_from(host.to_owned()).map_err(Error::from)
}

/// A hyper failure as the guest's error code. A connection the server closed or reset
/// mid-request is `connection-terminated`, which plugins treat as worth retrying;
/// `wasmtime-wasi-http` would call it a protocol error.
fn map_hyper_error(error: hyper::Error) -> Error {
    if error.is_timeout() {
        return Error::HttpResponseTimeout;
    }
    if error.is_incomplete_message() || error.is_canceled() || was_cut_off(&error) {
        return Error::ConnectionTerminated;
    }
    Error::from(error)
}

fn was_cut_off(error: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind::*;
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
            );
        }
        cause = e.source();
    }
    false
}

/// A response body that enforces the between-bytes timeout and, once read to its end,
/// gives its connection back to the pool. Dropped before its end, it closes the
/// connection instead (unread bytes would corrupt the next response).
struct PooledBody {
    incoming: Incoming,
    between_bytes: tokio::time::Interval,
    connection: Option<(Arc<ConnectionPool>, Origin, SendRequest<WasiBody>)>,
}

impl PooledBody {
    fn give_back(&mut self) {
        if let Some((pool, origin, sender)) = self.connection.take() {
            pool.put_idle(origin, sender);
        }
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // A guest need not read an empty body (a 204, a HEAD) to its end.
        if self.incoming.is_end_stream() {
            self.give_back();
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(None) => {
                self.give_back();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                self.connection = None;
                Poll::Ready(Some(Err(map_hyper_error(e))))
            }
            Poll::Ready(Some(Ok(frame))) => {
                self.between_bytes.reset();
                if self.incoming.is_end_stream() {
                    self.give_back();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                ready!(self.between_bytes.poll_tick(cx));
                self.connection = None;
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_always_carry_the_port() {
        let origin = |uri: &str| Origin::of(&uri.parse().unwrap()).unwrap();
        assert_eq!(
            origin("https://api.example.com/x").address,
            "api.example.com:443"
        );
        assert_eq!(
            origin("http://api.example.com/x").address,
            "api.example.com:80"
        );
        assert_eq!(origin("http://[::1]:8080/").address, "[::1]:8080");
        assert!(origin("https://a.example/").https);
        // Same host, other scheme: another origin, never the same connection.
        assert_ne!(
            origin("http://a.example:443/"),
            origin("https://a.example/")
        );
        assert!(Origin::of(&"/only/a/path".parse().unwrap()).is_err());
    }

    #[test]
    fn certificates_are_checked_against_the_host_or_its_ip() {
        use rustls::pki_types::ServerName;
        let name = |a: &str| server_name(a).unwrap();
        assert_eq!(
            name("api.example.com:443"),
            ServerName::try_from("api.example.com").unwrap()
        );
        assert_eq!(
            name("127.0.0.1:8443"),
            ServerName::from(std::net::Ipv4Addr::LOCALHOST)
        );
        assert_eq!(
            name("[::1]:443"),
            ServerName::from(std::net::Ipv6Addr::LOCALHOST)
        );
    }

    #[test]
    fn a_reset_connection_is_terminated_not_a_protocol_error() {
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(was_cut_off(&reset));
        let other = std::io::Error::from(std::io::ErrorKind::InvalidData);
        assert!(!was_cut_off(&other));
    }
}
