//! What JavaScript sees of admission: the options it passes in and the
//! PROXY header and refusals it gets back, as plain objects.

use std::net::SocketAddr;
use std::time::Duration;

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;
use rust_net_admission::cidr::RuleSet;
use rust_net_admission::policy::{Policy, TrustedWithoutHeader, Untrusted};
use rust_net_admission::proxy::{
    Addresses, Command, Header, ParseOptions, Version, MAX_HEADER_LEN_MAX, MAX_HEADER_LEN_MIN,
};

use super::{Admission, Proxied, ProxyConfig, Rejection};

/// `proxyProtocol`, normalised by lib/options.js.
#[napi(object)]
pub struct ProxyOptions {
    /// The trusted sources as `parseRules()` returned them
    /// ([`RuleSet::to_words`]): parsed when the option was given.
    pub trusted: Vec<u32>,
    pub untrusted: UntrustedPeer,
    /// A trusted peer that sends no header.
    pub missing_header: MissingHeader,
    pub timeout_ms: u32,
    pub max_header_length: u32,
}

/// `proxyProtocol.untrusted`: what to do with a peer that is not a trusted
/// proxy. lib/options.js validates it; another value is refused by
/// napi-rs's conversion (a thrown TypeError), never a panic.
#[napi(string_enum)]
pub enum UntrustedPeer {
    /// Serve it as a direct client, its bytes untouched.
    #[napi(value = "pass")]
    Pass,
    /// Close it (a port for proxies only).
    #[napi(value = "reject")]
    Reject,
}

/// `proxyProtocol.missingHeader`: what to do with a trusted peer whose
/// first bytes are not a PROXY header (converted as [`UntrustedPeer`]).
#[napi(string_enum)]
pub enum MissingHeader {
    /// Close it (REQUIRE, the default).
    #[napi(value = "reject")]
    Reject,
    /// Serve it with its real addresses (USE).
    #[napi(value = "pass")]
    Pass,
}

impl From<&UntrustedPeer> for Untrusted {
    fn from(value: &UntrustedPeer) -> Self {
        match value {
            UntrustedPeer::Pass => Untrusted::Pass,
            UntrustedPeer::Reject => Untrusted::Reject,
        }
    }
}

impl From<&MissingHeader> for TrustedWithoutHeader {
    fn from(value: &MissingHeader) -> Self {
        match value {
            MissingHeader::Reject => TrustedWithoutHeader::Reject,
            MissingHeader::Pass => TrustedWithoutHeader::Pass,
        }
    }
}

/// The smallest `proxyProtocol.maxHeaderLength` (see
/// [`rust_net_admission::proxy::MAX_HEADER_LEN_MIN`]), for lib/options.js.
#[napi]
pub const PROXY_MAX_HEADER_LENGTH_MIN: u32 = MAX_HEADER_LEN_MIN as u32;

/// The largest `proxyProtocol.maxHeaderLength` (see
/// [`rust_net_admission::proxy::MAX_HEADER_LEN_MAX`]), for lib/options.js.
#[napi]
pub const PROXY_MAX_HEADER_LENGTH_MAX: u32 = MAX_HEADER_LEN_MAX as u32;

// Both fit a u32 exactly (the casts above truncate nothing).
const _: () = assert!(MAX_HEADER_LEN_MAX <= u32::MAX as usize);

/// Everything admission needs for one server.
#[napi(object)]
pub struct AdmissionOptions {
    /// The blockList's rules in Node's `rules` format, or none.
    pub block_rules: Option<Vec<String>>,
    pub proxy: Option<ProxyOptions>,
    /// Queue refusals for a `'connectionRejected'` event.
    pub report: bool,
    /// `maxConnectionsPerAddress` / `acceptRatePerAddress`, or none.
    pub peers: Option<super::peers::PeerLimitOptions>,
}

/// Parses rules given as Node's `rules` strings or as address/CIDR strings.
pub fn rules(items: &[String]) -> Result<RuleSet, String> {
    let mut set = RuleSet::new();
    for item in items {
        let rule = rust_net_admission::cidr::parse_node_rule(item)
            .or_else(|_| rust_net_admission::cidr::parse_rule(item))
            .map_err(|e| format!("{item}: {e}"))?;
        set.add(rule).map_err(|e| format!("{item}: {e}"))?;
    }
    Ok(set)
}

/// What `parseRules()` returns: the rules as [`RuleSet::to_words`] writes
/// them, or why one does not parse.
#[napi(object)]
pub struct ParsedRules {
    pub words: Option<Vec<u32>>,
    pub error: Option<String>,
}

impl ParsedRules {
    pub fn of(items: &[String]) -> Self {
        match rules(items) {
            Ok(set) => ParsedRules {
                words: Some(set.to_words()),
                error: None,
            },
            Err(error) => ParsedRules {
                words: None,
                error: Some(error),
            },
        }
    }
}

/// `maxHeaderLength`, checked against the bounds lib/options.js checks
/// (both are [`PROXY_MAX_HEADER_LENGTH_MIN`] and [`PROXY_MAX_HEADER_LENGTH_MAX`],
/// which the addon exports to it), so that no other value reaches the parser.
fn max_header_len(value: u32) -> Result<usize, String> {
    if !(PROXY_MAX_HEADER_LENGTH_MIN..=PROXY_MAX_HEADER_LENGTH_MAX).contains(&value) {
        return Err(format!(
            "maxHeaderLength {value} is not from {PROXY_MAX_HEADER_LENGTH_MIN} to {PROXY_MAX_HEADER_LENGTH_MAX}"
        ));
    }
    usize::try_from(value).map_err(|_| format!("maxHeaderLength {value} does not fit"))
}

impl AdmissionOptions {
    pub fn build(&self) -> Result<Admission, String> {
        let blocked = self.block_rules.as_deref().map(rules).transpose()?;
        let proxy = self
            .proxy
            .as_ref()
            .map(|p| -> Result<ProxyConfig, String> {
                Ok(ProxyConfig {
                    trusted: RuleSet::from_words(&p.trusted)
                        .map_err(|e| format!("trusted: {e}"))?,
                    policy: Policy {
                        untrusted: Untrusted::from(&p.untrusted),
                        trusted_without_header: TrustedWithoutHeader::from(&p.missing_header),
                        parse: ParseOptions {
                            max_header_len: max_header_len(p.max_header_length)?,
                            ..ParseOptions::default()
                        },
                    },
                    timeout: Duration::from_millis(u64::from(p.timeout_ms)),
                })
            })
            .transpose()?;
        let peers = self.peers.as_ref().map(|p| p.build()).transpose()?;
        Ok(Admission::new(blocked, proxy, self.report).limiting(peers))
    }
}

/// An address as Node reports one.
#[napi(object)]
pub struct Endpoint {
    pub address: String,
    pub port: u32,
    /// `'IPv4'` or `'IPv6'`.
    pub family: String,
}

fn endpoint(addr: SocketAddr) -> Endpoint {
    Endpoint {
        address: addr.ip().to_string(),
        port: u32::from(addr.port()),
        family: if addr.is_ipv4() { "IPv4" } else { "IPv6" }.to_string(),
    }
}

#[napi(object)]
pub struct TlvInfo {
    #[napi(js_name = "type")]
    pub kind: u32,
    pub value: Buffer,
}

/// PP2_TYPE_SSL and its sub-TLVs.
#[napi(object)]
pub struct SslInfo {
    pub client_ssl: bool,
    pub client_cert_conn: bool,
    pub client_cert_sess: bool,
    /// The proxy verified the client certificate (`verify == 0`).
    pub verified: bool,
    pub version: Option<String>,
    pub cn: Option<String>,
    pub cipher: Option<String>,
    pub sig_alg: Option<String>,
    pub key_alg: Option<String>,
}

/// What a PROXY header said, as `rustNet.proxyHeader(socket)` returns it.
#[napi(object)]
pub struct ProxyHeader {
    /// 1 or 2.
    pub version: u32,
    /// `'PROXY'` or `'LOCAL'`.
    pub command: String,
    /// The client as the proxy saw it (None for LOCAL, UNKNOWN, UNSPEC and
    /// UNIX headers: the socket keeps its real addresses then).
    pub source: Option<Endpoint>,
    pub destination: Option<Endpoint>,
    /// The real peer (the proxy itself).
    pub proxy: Option<Endpoint>,
    pub alpn: Option<String>,
    pub authority: Option<String>,
    pub unique_id: Option<Buffer>,
    pub netns: Option<String>,
    pub ssl: Option<SslInfo>,
    /// Present when the header carried a CRC32C (checked: a header whose
    /// checksum is wrong is refused).
    #[napi(js_name = "crc32c")]
    pub crc32c: Option<u32>,
    pub aws_vpc_endpoint_id: Option<String>,
    pub azure_private_link_id: Option<u32>,
    /// GCP PSC connection id, as a decimal string (it is a u64).
    pub gcp_psc_connection_id: Option<String>,
    /// Every TLV, raw, in header order.
    pub tlvs: Vec<TlvInfo>,
}

impl From<&Proxied> for ProxyHeader {
    fn from(p: &Proxied) -> Self {
        let h: &Header = &p.header;
        let real = h.uses_real_addresses() || !matches!(h.addresses, Addresses::Inet { .. });
        let tlvs = &h.tlvs;
        ProxyHeader {
            version: match h.version {
                Version::V1 => 1,
                Version::V2 => 2,
            },
            command: match h.command {
                Command::Local => "LOCAL",
                Command::Proxy => "PROXY",
            }
            .to_string(),
            source: if real { None } else { h.source().map(endpoint) },
            destination: if real {
                None
            } else {
                h.destination().map(endpoint)
            },
            proxy: p.real_peer.map(endpoint),
            alpn: tlvs.alpn().map(|v| String::from_utf8_lossy(v).into_owned()),
            authority: tlvs.authority().map(str::to_string),
            unique_id: tlvs.unique_id().map(|v| Buffer::from(v.to_vec())),
            netns: tlvs.netns().map(str::to_string),
            ssl: tlvs.ssl().map(|s| SslInfo {
                client_ssl: s.client_ssl(),
                client_cert_conn: s.client_cert_conn(),
                client_cert_sess: s.client_cert_sess(),
                verified: s.verified(),
                version: s.version().map(str::to_string),
                cn: s.cn().map(str::to_string),
                cipher: s.cipher().map(str::to_string),
                sig_alg: s.sig_alg().map(str::to_string),
                key_alg: s.key_alg().map(str::to_string),
            }),
            crc32c: tlvs.crc32c(),
            aws_vpc_endpoint_id: tlvs.aws_vpce_id().map(str::to_string),
            azure_private_link_id: tlvs.azure_link_id(),
            gcp_psc_connection_id: tlvs.gcp_psc_connection_id().map(|id| id.to_string()),
            tlvs: tlvs
                .iter()
                .map(|t| TlvInfo {
                    kind: u32::from(t.kind),
                    value: Buffer::from(t.value.to_vec()),
                })
                .collect(),
        }
    }
}

/// A refused connection, for the `'connectionRejected'` event.
#[napi(object)]
pub struct RejectionInfo {
    pub code: String,
    pub detail: Option<String>,
    pub remote_address: Option<String>,
    pub remote_port: Option<u32>,
    pub remote_family: Option<String>,
}

impl From<Rejection> for RejectionInfo {
    fn from(r: Rejection) -> Self {
        let peer = r.peer.map(endpoint);
        RejectionInfo {
            code: r.code.to_string(),
            detail: r.detail.map(str::to_string),
            remote_address: peer.as_ref().map(|p| p.address.clone()),
            remote_port: peer.as_ref().map(|p| p.port),
            remote_family: peer.map(|p| p.family),
        }
    }
}
