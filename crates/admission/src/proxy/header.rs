//! The parsed PROXY header: what the proxy told us about the connection.
//!
//! Everything here is owned (no borrow of the read buffer) because the addon
//! moves the header from the accept task to the JS thread, long after the
//! buffer it came from has been reused.

use std::fmt;
use std::net::SocketAddr;

use super::tlv::Tlvs;

/// Which wire format the header used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// Human-readable `PROXY TCP4 ...\r\n` line.
    V1,
    /// Binary format behind the 12-byte signature.
    V2,
}

/// v2's command nibble. v1 has no command; a v1 header is always `Proxy`
/// (its `UNKNOWN` form is expressed through [`Addresses::Unspec`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// The proxy opened this connection itself (health check): the real
    /// endpoints are the true ones, and the address block is ignored.
    Local,
    /// The connection is relayed on behalf of a client.
    Proxy,
}

/// v2's address family nibble (v1: TCP4 → Inet, TCP6 → Inet6, UNKNOWN → Unspec).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Unspec,
    Inet,
    Inet6,
    Unix,
}

impl Family {
    /// Size of the address block that this family puts before the TLVs.
    /// UNSPEC has none, so its TLVs start right after the 16 fixed bytes.
    pub const fn address_len(self) -> usize {
        match self {
            Family::Unspec => 0,
            Family::Inet => 12,
            Family::Inet6 => 36,
            Family::Unix => 216,
        }
    }
}

/// v2's transport nibble (v1: TCP4/TCP6 → Stream, UNKNOWN → Unspec).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Unspec,
    Stream,
    Dgram,
}

/// An AF_UNIX address exactly as carried on the wire (108 bytes, NUL padded).
///
/// Kept raw because abstract socket names start with a NUL and may contain
/// more, so "the bytes before the first NUL" is not always the name. Boxed
/// so that the rare UNIX header does not make every `Header` 200 bytes larger.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UnixAddr(pub Box<[u8; 108]>);

impl UnixAddr {
    /// The path with its NUL padding removed: for a filesystem path, the bytes
    /// before the first NUL; for an abstract name (leading NUL), everything up
    /// to the last non-NUL byte.
    pub fn path(&self) -> &[u8] {
        let raw = &self.0[..];
        if raw.first() == Some(&0) {
            let end = raw.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            &raw[..end]
        } else {
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            &raw[..end]
        }
    }

    /// Build from a path (truncated to 108 bytes, NUL padded). For tests,
    /// encoders and the addon's own fixtures.
    pub fn from_path(path: &[u8]) -> Self {
        let mut raw = Box::new([0u8; 108]);
        let n = path.len().min(108);
        raw[..n].copy_from_slice(&path[..n]);
        UnixAddr(raw)
    }
}

impl fmt::Debug for UnixAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnixAddr({:?})", String::from_utf8_lossy(self.path()))
    }
}

/// The endpoints the header carries, already reduced to what the server
/// should use.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Addresses {
    /// Use the real connection's endpoints: v1 `UNKNOWN`, v2 `LOCAL`, or a v2
    /// `PROXY` whose family or transport is UNSPEC (the spec says to ignore
    /// the address information then).
    Unspec,
    /// TCP over IPv4 or IPv6. Both addresses are of the same family.
    Inet {
        source: SocketAddr,
        destination: SocketAddr,
    },
    /// AF_UNIX stream endpoints.
    Unix {
        source: UnixAddr,
        destination: UnixAddr,
    },
}

/// A complete, validated PROXY protocol header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub version: Version,
    pub command: Command,
    pub family: Family,
    pub transport: Transport,
    pub addresses: Addresses,
    /// v2 TLVs (always empty for v1), validated and CRC32C-checked.
    pub tlvs: Tlvs,
}

impl Header {
    /// The client address to report as `remoteAddress`/`remotePort`, or
    /// `None` when the real peer must be kept (LOCAL, UNKNOWN, UNSPEC, UNIX).
    pub fn source(&self) -> Option<SocketAddr> {
        match &self.addresses {
            Addresses::Inet { source, .. } => Some(*source),
            _ => None,
        }
    }

    /// The address the client connected to (`localAddress`/`localPort`), or
    /// `None` when the real local endpoint must be kept.
    pub fn destination(&self) -> Option<SocketAddr> {
        match &self.addresses {
            Addresses::Inet { destination, .. } => Some(*destination),
            _ => None,
        }
    }

    /// True when the server should keep the real endpoints.
    pub fn uses_real_addresses(&self) -> bool {
        !matches!(self.addresses, Addresses::Inet { .. })
    }
}
