//! Locating a next hop (RFC 3263 §4): the transport (from the URI, else
//! NAPTR, else SRV), then the targets (SRV by priority and weight, then
//! AAAA/A), in the order to try them; a failed target gives way to the next
//! (§4.3, the engine's job).
//!
//! Lookups run on a resolver thread of the engine (hickory's resolver on a
//! single-threaded tokio runtime, with its TTL-bound cache), so that no
//! lookup ever blocks the engine or another profile: answers come back
//! through a channel and the engine's waker. `SIPPROFILE_DNS_SERVERS`
//! (comma-separated `ip[:port]`) replaces /etc/resolv.conf's servers.

use super::transport::Transport;
use super::uri::{Scheme, Uri};
use crate::log;
use crossbeam_channel::Sender;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One place to send a request to: an address and the transport to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Target {
    pub addr: SocketAddr,
    pub transport: Transport,
}

/// The targets of a next hop, best first, and how long DNS lets us keep them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub targets: Vec<Target>,
    pub valid_until: Instant,
}

/// What to locate: the parts of a next hop's URI that RFC 3263 looks at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Query {
    /// Lower case, without IPv6 brackets.
    pub host: String,
    pub port: Option<u16>,
    pub sips: bool,
    /// Fixed by `;transport=` (or nothing to choose: see [`Query::of`]).
    pub transport: Option<Transport>,
}

/// A numeric host is good for this long (it never changes).
const FOREVER: Duration = Duration::from_secs(365 * 24 * 3600);

impl Query {
    /// The query for a next hop; `None` for a `;transport=` this library
    /// does not speak.
    pub fn of(uri: &Uri) -> Option<Query> {
        let transport = match uri.param("transport") {
            Some(_) => Some(Transport::for_next_hop(uri).ok()?),
            None => None,
        };
        Some(Query {
            host: uri.host_unbracketed().to_ascii_lowercase(),
            port: uri.port,
            sips: uri.scheme == Scheme::Sips,
            transport,
        })
    }

    /// The transport when neither the URI nor DNS chooses (§4.1).
    fn default_transport(&self) -> Transport {
        self.transport.unwrap_or(if self.sips {
            Transport::Tls
        } else {
            Transport::Udp
        })
    }

    /// Numeric hosts need no lookup (§4.1, §4.2): the URI's port or the
    /// transport's default.
    pub fn numeric(&self) -> Option<Resolution> {
        let ip: IpAddr = self.host.parse().ok()?;
        let transport = self.default_transport();
        let port = self.port.unwrap_or(default_port(transport));
        Some(Resolution {
            targets: vec![Target {
                addr: SocketAddr::new(ip, port),
                transport,
            }],
            valid_until: Instant::now() + FOREVER,
        })
    }
}

fn default_port(t: Transport) -> u16 {
    match t {
        Transport::Tls => 5061,
        _ => 5060,
    }
}

/// The SRV owner name for a transport (§4.2): `_sips._tcp` for TLS.
fn srv_name(t: Transport, host: &str) -> String {
    match t {
        Transport::Udp => format!("_sip._udp.{host}"),
        Transport::Tcp => format!("_sip._tcp.{host}"),
        Transport::Tls => format!("_sips._tcp.{host}"),
    }
}

/// A NAPTR record as RFC 3263 reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naptr {
    pub order: u16,
    pub preference: u16,
    pub flags: String,
    pub services: String,
    pub replacement: String,
}

/// The usable NAPTR records (flag "s", a service we speak; only SIPS+D2T
/// for a `sips:` URI), in order and preference: (transport, SRV name).
pub fn naptr_choices(mut records: Vec<Naptr>, sips: bool) -> Vec<(Transport, String)> {
    records.sort_by_key(|r| (r.order, r.preference));
    records
        .into_iter()
        .filter(|r| r.flags.eq_ignore_ascii_case("s"))
        .filter_map(|r| {
            let t = match r.services.to_ascii_uppercase().as_str() {
                "SIP+D2U" if !sips => Transport::Udp,
                "SIP+D2T" if !sips => Transport::Tcp,
                "SIPS+D2T" => Transport::Tls,
                _ => return None,
            };
            let name = r.replacement.trim_end_matches('.').to_owned();
            (!name.is_empty()).then_some((t, name))
        })
        .collect()
}

/// An SRV record: (priority, weight, port, target).
pub type Srv = (u16, u16, u16, String);

/// RFC 2782 order: by priority; within one, a weighted random draw
/// (`draw(total)` gives a number in `0..total`), weight 0 last.
pub fn order_srv(mut records: Vec<Srv>, mut draw: impl FnMut(u32) -> u32) -> Vec<Srv> {
    records.sort_by_key(|r| r.0);
    let mut out = Vec::with_capacity(records.len());
    let mut i = 0;
    while i < records.len() {
        let prio = records[i].0;
        let end = records[i..]
            .iter()
            .position(|r| r.0 != prio)
            .map_or(records.len(), |n| i + n);
        let mut group: Vec<Srv> = records[i..end].to_vec();
        while !group.is_empty() {
            let total: u32 = group.iter().map(|r| u32::from(r.1)).sum();
            let pick = if total == 0 {
                0
            } else {
                let mut x = draw(total).min(total - 1);
                group
                    .iter()
                    .position(|r| {
                        let w = u32::from(r.1);
                        if x < w {
                            true
                        } else {
                            x -= w;
                            false
                        }
                    })
                    .unwrap_or(0)
            };
            out.push(group.remove(pick));
        }
        i = end;
    }
    out
}

fn random_below(n: u32) -> u32 {
    (crate::random::uniform(0.0, f64::from(n)) as u32).min(n.saturating_sub(1))
}

/// `SIPPROFILE_DNS_SERVERS`: comma-separated `ip`, `ip:port` or
/// `[ipv6]:port`; `None` when unset or empty, `Err` when malformed.
pub fn parse_dns_servers(value: &str) -> Result<Option<Vec<SocketAddr>>, String> {
    let mut out = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let addr = if let Ok(a) = part.parse::<SocketAddr>() {
            a
        } else if let Ok(ip) = part.trim_matches(['[', ']']).parse::<IpAddr>() {
            SocketAddr::new(ip, 53)
        } else {
            return Err(format!("not an ip[:port]: {part:?}"));
        };
        out.push(addr);
    }
    Ok((!out.is_empty()).then_some(out))
}

fn resolver_config() -> (ResolverConfig, ResolverOpts) {
    let env = std::env::var("SIPPROFILE_DNS_SERVERS").unwrap_or_default();
    match parse_dns_servers(&env) {
        Ok(Some(servers)) => {
            let name_servers = servers
                .iter()
                .map(|s| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = s.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = s.port();
                    let mut ns = NameServerConfig::udp_and_tcp(s.ip());
                    ns.connections = vec![udp, tcp];
                    ns
                })
                .collect();
            return (
                ResolverConfig::from_parts(None, vec![], name_servers),
                ResolverOpts::default(),
            );
        }
        Ok(None) => {}
        Err(e) => log::warn(&format!(
            "SIPPROFILE_DNS_SERVERS ignored: {e}; using the system's"
        )),
    }
    match hickory_resolver::system_conf::read_system_conf() {
        Ok(c) => c,
        Err(e) => {
            log::warn(&format!("DNS configuration: {e}; no name servers"));
            (
                ResolverConfig::from_parts(None, vec![], vec![]),
                ResolverOpts::default(),
            )
        }
    }
}

/// The engine's resolver thread. Dropping it ends the thread.
pub struct Resolver {
    requests: Option<tokio::sync::mpsc::UnboundedSender<Query>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Resolver {
    /// Ends the thread: no more requests ends its loop, and the runtime
    /// drops the lookups still under way.
    fn drop(&mut self) {
        self.requests = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A lookup's answer, as the engine receives it.
pub type Answer = (Query, Result<Resolution, i32>);

impl Resolver {
    /// Starts the thread; answers go to `answers`, then `wake` is called.
    pub fn start(
        answers: Sender<Answer>,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> io::Result<Resolver> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Query>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = crate::thread_placement::spawn("sipprofile-dns", move || {
            runtime.block_on(async move {
                let (config, mut opts) = resolver_config();
                // Answers are cached by the engine too; a name is asked
                // for once however many profiles use it.
                opts.cache_size = 1024;
                let resolver = match TokioResolver::builder_with_config(
                    config,
                    TokioRuntimeProvider::default(),
                )
                .with_options(opts)
                .build()
                {
                    Ok(r) => Arc::new(r),
                    Err(e) => {
                        log::error(&format!("DNS resolver: {e}"));
                        while let Some(q) = rx.recv().await {
                            let _ = answers.send((q, Err(crate::error::SIP_RESOLVING_FAILURE)));
                            wake();
                        }
                        return;
                    }
                };
                while let Some(q) = rx.recv().await {
                    let (resolver, answers, wake) =
                        (resolver.clone(), answers.clone(), wake.clone());
                    tokio::spawn(async move {
                        let result = locate(&resolver, &q).await;
                        match &result {
                            Ok(r) => log::debug(&format!(
                                "{}: {:?}",
                                q.host,
                                r.targets
                                    .iter()
                                    .map(|t| format!("{} {}", t.transport.via_name(), t.addr))
                                    .collect::<Vec<_>>()
                            )),
                            Err(_) => log::warn(&format!("{}: not found in DNS", q.host)),
                        }
                        if answers.send((q, result)).is_ok() {
                            wake();
                        }
                    });
                }
            });
        })?;
        Ok(Resolver {
            requests: Some(tx),
            thread: Some(thread),
        })
    }

    /// Asks for `q`; the answer comes back through the channel.
    pub fn lookup(&self, q: Query) {
        if let Some(r) = &self.requests {
            let _ = r.send(q);
        }
    }
}

/// How long a target that failed is tried only after the others (§4.3).
const AVOID_FOR: Duration = Duration::from_secs(30);

/// The engine's side of name resolution: answers it can give at once
/// (numeric hosts, answers still valid), lookups in flight on the resolver
/// thread with the parties `W` waiting for them, and targets that failed
/// lately.
pub struct Names<W> {
    wake: Arc<dyn Fn() + Send + Sync>,
    answers_tx: Sender<Answer>,
    answers: crossbeam_channel::Receiver<Answer>,
    /// Started at the first name to look up.
    resolver: Option<Resolver>,
    cache: HashMap<Query, Resolution>,
    waiting: HashMap<Query, Vec<W>>,
    avoid: HashMap<Target, Instant>,
}

impl<W> Names<W> {
    /// `wake` wakes the engine when an answer has arrived.
    pub fn new(wake: Arc<dyn Fn() + Send + Sync>) -> Names<W> {
        let (answers_tx, answers) = crossbeam_channel::unbounded();
        Names {
            wake,
            answers_tx,
            answers,
            resolver: None,
            cache: HashMap::new(),
            waiting: HashMap::new(),
            avoid: HashMap::new(),
        }
    }

    /// The targets of `q` if known now; else `None`, and `waiter` gets the
    /// answer from [`Names::answered`] once it arrives.
    pub fn locate(&mut self, q: &Query, waiter: W) -> Option<Result<Resolution, i32>> {
        if let Some(r) = q.numeric() {
            return Some(Ok(r));
        }
        let now = Instant::now();
        if let Some(r) = self.cache.get(q) {
            if r.valid_until > now {
                return Some(Ok(r.clone()));
            }
            self.cache.remove(q);
        }
        if let Some(w) = self.waiting.get_mut(q) {
            w.push(waiter); // asked already
            return None;
        }
        if self.resolver.is_none() {
            match Resolver::start(self.answers_tx.clone(), self.wake.clone()) {
                Ok(r) => self.resolver = Some(r),
                Err(e) => {
                    log::error(&format!("cannot start the DNS resolver: {e}"));
                    return Some(Err(crate::error::SIP_RESOLVING_FAILURE));
                }
            }
        }
        if let Some(r) = &self.resolver {
            r.lookup(q.clone());
        }
        self.waiting.insert(q.clone(), vec![waiter]);
        None
    }

    /// Answers that arrived: (query, result, the parties waiting for it).
    pub fn answered(&mut self) -> Vec<(Query, Result<Resolution, i32>, Vec<W>)> {
        let mut out = Vec::new();
        while let Ok((q, result)) = self.answers.try_recv() {
            if let Ok(r) = &result {
                self.cache.insert(q.clone(), r.clone());
            }
            let waiters = self.waiting.remove(&q).unwrap_or_default();
            out.push((q, result, waiters));
        }
        if self.cache.len() > 4096 {
            let now = Instant::now();
            self.cache.retain(|_, r| r.valid_until > now);
        }
        out
    }

    /// `t` failed: others go first for a while.
    pub fn avoid(&mut self, t: Target) {
        let now = Instant::now();
        self.avoid.retain(|_, until| *until > now);
        self.avoid.insert(t, now + AVOID_FOR);
    }

    /// Targets in the order to try them: those that failed lately last.
    pub fn order(&self, targets: &mut [Target]) {
        let now = Instant::now();
        targets.sort_by_key(|t| self.avoid.get(t).is_some_and(|until| *until > now));
    }
}

/// An error that says nothing about the name (no server answered): the
/// next steps would wait as long, so the lookup stops. Anything else (no
/// such records, a server refusing a record type) goes on to the next step.
fn unanswered(e: &NetError) -> bool {
    matches!(
        e,
        NetError::Timeout | NetError::NoConnections | NetError::Io(_) | NetError::Busy
    )
}

fn absent(e: &NetError) -> bool {
    !unanswered(e)
}

struct Lookups<'a> {
    resolver: &'a TokioResolver,
    valid_until: Instant,
}

impl Lookups<'_> {
    fn keep(&mut self, until: Instant) {
        self.valid_until = self.valid_until.min(until);
    }

    async fn addresses(&mut self, host: &str) -> Result<Vec<IpAddr>, NetError> {
        let ips = self.resolver.lookup_ip(host).await?;
        self.keep(ips.valid_until());
        Ok(ips.iter().collect())
    }

    async fn srv(&mut self, name: &str) -> Result<Vec<Srv>, NetError> {
        let l = self.resolver.lookup(name, RecordType::SRV).await?;
        self.keep(l.valid_until());
        Ok(l.answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(s) => Some((
                    s.priority,
                    s.weight,
                    s.port,
                    s.target.to_utf8().trim_end_matches('.').to_owned(),
                )),
                _ => None,
            })
            // Target "." : the service is decidedly not offered here.
            .filter(|s| !s.3.is_empty())
            .collect())
    }

    async fn naptr(&mut self, host: &str) -> Result<Vec<Naptr>, NetError> {
        let l = self.resolver.lookup(host, RecordType::NAPTR).await?;
        self.keep(l.valid_until());
        Ok(l.answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::NAPTR(n) => Some(Naptr {
                    order: n.order,
                    preference: n.preference,
                    flags: String::from_utf8_lossy(&n.flags).into_owned(),
                    services: String::from_utf8_lossy(&n.services).into_owned(),
                    replacement: n.replacement.to_utf8(),
                }),
                _ => None,
            })
            .collect())
    }

    /// The targets of one SRV name, in RFC 2782 order; each SRV target's
    /// addresses in turn. A target that does not resolve is left out.
    async fn srv_targets(&mut self, name: &str, t: Transport) -> Result<Vec<Target>, NetError> {
        let mut out = Vec::new();
        for (_, _, port, host) in order_srv(self.srv(name).await?, random_below) {
            match self.addresses(&host).await {
                Ok(ips) => out.extend(ips.into_iter().map(|ip| Target {
                    addr: SocketAddr::new(ip, port),
                    transport: t,
                })),
                Err(e) => log::debug(&format!("{host}: {e}")),
            }
        }
        Ok(out)
    }
}

/// RFC 3263 §4 for a name (numeric hosts are the engine's, without a thread).
async fn locate(resolver: &TokioResolver, q: &Query) -> Result<Resolution, i32> {
    let fail = |e: NetError| {
        log::debug(&format!("{}: {e}", q.host));
        crate::error::SIP_RESOLVING_FAILURE
    };
    let mut l = Lookups {
        resolver,
        valid_until: Instant::now() + FOREVER,
    };
    let host = q.host.as_str();
    let mut targets = Vec::new();
    if let Some(port) = q.port {
        // An explicit port: no NAPTR, no SRV (§4.2).
        let t = q.default_transport();
        let ips = l.addresses(host).await.map_err(fail)?;
        targets.extend(ips.into_iter().map(|ip| Target {
            addr: SocketAddr::new(ip, port),
            transport: t,
        }));
    } else {
        let choices = match q.transport {
            Some(t) => vec![(t, srv_name(t, host))],
            None => {
                let naptr = match l.naptr(host).await {
                    Ok(n) => naptr_choices(n, q.sips),
                    Err(e) if absent(&e) => Vec::new(),
                    Err(e) => return Err(fail(e)),
                };
                if naptr.is_empty() {
                    // No usable NAPTR: SRV for each transport we speak (§4.1).
                    let mut all = vec![Transport::Tls];
                    if !q.sips {
                        all.insert(0, Transport::Tcp);
                        all.insert(0, Transport::Udp);
                    }
                    all.into_iter().map(|t| (t, srv_name(t, host))).collect()
                } else {
                    naptr
                }
            }
        };
        for (t, name) in choices {
            match l.srv_targets(&name, t).await {
                Ok(found) => targets.extend(found),
                Err(e) if absent(&e) => {}
                Err(e) => return Err(fail(e)),
            }
        }
        if targets.is_empty() {
            // No SRV: the host's addresses on the transport's port (§4.2).
            let t = q.default_transport();
            let ips = l.addresses(host).await.map_err(fail)?;
            targets.extend(ips.into_iter().map(|ip| Target {
                addr: SocketAddr::new(ip, default_port(t)),
                transport: t,
            }));
        }
    }
    let mut seen = std::collections::HashSet::new();
    targets.retain(|t| seen.insert(*t));
    if targets.is_empty() {
        return Err(crate::error::SIP_RESOLVING_FAILURE);
    }
    Ok(Resolution {
        targets,
        valid_until: l.valid_until,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Query {
        Query::of(&Uri::parse(s).unwrap()).unwrap()
    }

    #[test]
    fn numeric_hosts_skip_dns_with_default_ports() {
        let t = |s: &str| q(s).numeric().map(|r| r.targets[0]);
        let target = |a: &str, transport| {
            Some(Target {
                addr: a.parse().unwrap(),
                transport,
            })
        };
        assert_eq!(t("sip:127.0.0.1"), target("127.0.0.1:5060", Transport::Udp));
        assert_eq!(
            t("sips:127.0.0.1"),
            target("127.0.0.1:5061", Transport::Tls)
        );
        assert_eq!(
            t("sip:127.0.0.1;transport=tls"),
            target("127.0.0.1:5061", Transport::Tls)
        );
        assert_eq!(
            t("sip:[::1]:5070;transport=tcp"),
            target("[::1]:5070", Transport::Tcp)
        );
        assert_eq!(t("sip:example.com"), None);
        assert_eq!(
            Query::of(&Uri::parse("sip:a;transport=sctp").unwrap()),
            None
        );
        assert_eq!(q("sip:Example.COM:5080").host, "example.com");
    }

    #[test]
    fn naptr_records_choose_transports_in_order() {
        let n = |order, pref, flags: &str, services: &str, repl: &str| Naptr {
            order,
            preference: pref,
            flags: flags.into(),
            services: services.into(),
            replacement: repl.into(),
        };
        let records = vec![
            n(20, 10, "s", "SIP+D2U", "_sip._udp.example.com."),
            n(10, 20, "S", "SIP+D2T", "_sip._tcp.example.com."),
            n(10, 10, "s", "SIPS+D2T", "_sips._tcp.example.com."),
            n(5, 10, "s", "SIP+D2S", "_sip._sctp.example.com."),
            n(5, 10, "u", "SIP+D2U", "!^.*$!sip:x@example.com!"),
        ];
        assert_eq!(
            naptr_choices(records.clone(), false),
            vec![
                (Transport::Tls, "_sips._tcp.example.com".to_string()),
                (Transport::Tcp, "_sip._tcp.example.com".to_string()),
                (Transport::Udp, "_sip._udp.example.com".to_string()),
            ]
        );
        assert_eq!(
            naptr_choices(records, true),
            vec![(Transport::Tls, "_sips._tcp.example.com".to_string())]
        );
    }

    #[test]
    fn srv_by_priority_then_weight() {
        let s = |p, w, h: &str| (p, w, 5060, h.to_string());
        let records = vec![s(20, 0, "c"), s(10, 1, "b"), s(10, 3, "a"), s(30, 0, "d")];
        // Draws at the low end pick the first listed of the group by weight.
        let order = |draw: u32| {
            order_srv(records.clone(), |_| draw)
                .into_iter()
                .map(|r| r.3)
                .collect::<Vec<_>>()
        };
        assert_eq!(order(0), ["b", "a", "c", "d"]);
        assert_eq!(order(1), ["a", "b", "c", "d"]);
        assert_eq!(order(99), ["a", "b", "c", "d"]);
        // Over many real draws, weight 3 comes first about 3 times in 4.
        let firsts = (0..4000)
            .filter(|_| order_srv(records.clone(), random_below)[0].3 == "a")
            .count();
        assert!((2700..3300).contains(&firsts), "{firsts}");
        // Weight 0 only after the weighted ones of its priority.
        let zero = vec![s(1, 0, "z"), s(1, 5, "w")];
        for _ in 0..50 {
            assert_eq!(order_srv(zero.clone(), random_below)[0].3, "w");
        }
    }

    #[test]
    fn dns_servers_from_the_environment() {
        assert_eq!(parse_dns_servers(""), Ok(None));
        assert_eq!(
            parse_dns_servers("127.0.0.1:5353, ::1 ,[::1]:54"),
            Ok(Some(vec![
                "127.0.0.1:5353".parse().unwrap(),
                "[::1]:53".parse().unwrap(),
                "[::1]:54".parse().unwrap(),
            ]))
        );
        assert!(parse_dns_servers("127.0.0.1:x").is_err());
        assert!(parse_dns_servers("dns.example").is_err());
    }
}
