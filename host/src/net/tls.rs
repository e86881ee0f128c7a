//! The one TLS client configuration of the process, shared by every protocol a component is
//! granted (`https` egress, `wss` websockets): webpki roots, the ring provider, HTTP/1.1 by
//! ALPN, and the destination's host as SNI and certificate name.

use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::destination::Destination;

/// Runs the TLS handshake with `destination` over `io` (a connection to its checked addresses).
/// The caller bounds it in time.
pub(crate) async fn connect<IO>(destination: &Destination, io: IO) -> std::io::Result<TlsStream<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let name = server_name(destination)?;
    TlsConnector::from(CLIENT_CONFIG.clone())
        .connect(name, io)
        .await
}

/// The TLS server name: the host name (SNI and certificate check), or the IP literal.
fn server_name(destination: &Destination) -> std::io::Result<ServerName<'static>> {
    if let Ok(ip) = destination.host().parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(destination.host().to_owned())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
}

/// One rustls client configuration for the process: webpki roots, ring, HTTP/1.1 by ALPN.
static CLIENT_CONFIG: LazyLock<Arc<rustls::ClientConfig>> = LazyLock::new(|| {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("the ring provider supports the default TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_name_is_the_host_or_the_ip_literal() {
        let by_name: Destination = "https://api.example.org".parse().unwrap();
        assert!(
            matches!(server_name(&by_name), Ok(ServerName::DnsName(n)) if n.as_ref() == "api.example.org")
        );
        let by_ip: Destination = "https://192.0.2.1".parse().unwrap();
        assert!(matches!(server_name(&by_ip), Ok(ServerName::IpAddress(_))));
    }
}
