//! Transports against Kamailio on loopback: TCP, TLS (certificate made at
//! test time), IPv6, connection sharing, and recovery after the registrar's
//! connection drops.

mod support;

use sipprofile::Error;
use sipprofile::client::Event;
use sipprofile::profile::{Status, keys};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::{Kamailio, Seen, TempDir, free_port, provision, registry, wait_for};

const WAIT: Duration = Duration::from_secs(15);

/// Registers `registrar` (any transport), checks the binding, de-registers.
fn register_roundtrip(k: &Kamailio, registrar: &str, ca_file: Option<&Path>) -> String {
    let tmp = TempDir::new("transport");
    let store = tmp.path().join("p.db");
    let (m, _mrx) = registry(&store, true);
    let id = provision(&m, registrar, "alice", "alicepw", 300);
    if let Some(ca) = ca_file {
        let h = m.profile(id).unwrap();
        h.set_str(keys::TLS_CA_FILE, ca.to_str().unwrap()).unwrap();
        m.save(&h).unwrap();
    }
    let (u, rx) = registry(&store, false);
    let h = u.profile(id).unwrap();
    u.enable(&h).unwrap();
    assert!(
        wait_for(&rx, Seen::Event(id, Event::Registered), WAIT),
        "not registered over {registrar}"
    );
    let contact = h.info().registered_contact;
    let user = support::contact_user(&h);
    let bindings = k.bindings();
    assert!(bindings.contains(&user));
    // Kamailio records the transport the REGISTER really came over.
    let proto = match registrar {
        r if r.contains("transport=tls") => "tls:",
        r if r.contains("transport=tcp") => "tcp:",
        _ => "udp:",
    };
    assert!(bindings.contains(&format!("Socket: {proto}")), "{bindings}");
    u.disable(&h).unwrap();
    assert!(wait_for(&rx, Seen::Event(id, Event::Deregistered), WAIT));
    assert!(!k.bindings().contains(&user));
    drop(h);
    u.close();
    m.close();
    contact
}

#[test]
fn tcp_registers_and_unregisters() {
    let k = Kamailio::start("MD5");
    let contact = register_roundtrip(&k, &format!("sip:127.0.0.1:{};transport=tcp", k.port), None);
    assert!(contact.contains("transport=tcp"), "{contact}");
}

#[test]
fn ipv6_udp_and_tcp() {
    let k = Kamailio::start_env("SHA-256", 60, 0, &[("KAMAILIO_IPV6", "1")]);
    let c = register_roundtrip(&k, &format!("sip:[::1]:{}", k.port), None);
    assert!(c.contains("@[::1]:"), "{c}");
    let c = register_roundtrip(&k, &format!("sip:[::1]:{};transport=tcp", k.port), None);
    assert!(c.contains("@[::1]:") && c.contains("transport=tcp"), "{c}");
}

/// A CA and a server certificate for 127.0.0.1, made with openssl.
fn make_certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let st = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            st.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=sipprofile test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

#[test]
fn tls_verifies_the_certificate() {
    let certs = TempDir::new("certs");
    make_certificates(certs.path());
    let tls_port = free_port();
    let k = Kamailio::start_env(
        "MD5",
        60,
        0,
        &[
            ("KAMAILIO_TLS_PORT", &tls_port.to_string()),
            ("KAMAILIO_TLS_DIR", certs.path().to_str().unwrap()),
        ],
    );
    let registrar = format!("sip:127.0.0.1:{tls_port};transport=tls");
    let contact = register_roundtrip(&k, &registrar, Some(&certs.path().join("ca.pem")));
    assert!(contact.contains("transport=tls"), "{contact}");

    // Without the CA the certificate is untrusted: an error, never a fallback.
    let tmp = TempDir::new("tls-untrusted");
    let store = tmp.path().join("p.db");
    let (m, _mrx) = registry(&store, true);
    let id = provision(&m, &registrar, "alice", "alicepw", 300);
    let (u, rx) = registry(&store, false);
    let h = u.profile(id).unwrap();
    u.enable(&h).unwrap();
    let code = Error::Sip(sipprofile::error::SIP_TRANSPORT_FAILURE).code();
    assert!(wait_for(&rx, Seen::Error(id, code), WAIT));
    assert_eq!(h.status(), Status::Unregistered);
    assert!(!k.bindings().contains(&support::contact_user(&h)));
    drop(h);
    u.close();
    m.close();
}

#[test]
fn profiles_share_one_connection_per_next_hop() {
    let k = Kamailio::start("MD5");
    let registrar = format!("sip:127.0.0.1:{};transport=tcp", k.port);
    let tmp = TempDir::new("share");
    let store = tmp.path().join("p.db");
    let (m, _mrx) = registry(&store, true);
    let a = provision(&m, &registrar, "alice", "alicepw", 300);
    let b = provision(&m, &registrar, "bob", "bobpw", 300);
    let (u, rx) = registry(&store, false);
    let (ha, hb) = (u.profile(a).unwrap(), u.profile(b).unwrap());
    u.enable(&ha).unwrap();
    u.enable(&hb).unwrap();
    let mut seen = 0;
    while seen < 2 {
        match rx.recv_timeout(WAIT) {
            Ok(Seen::Event(_, Event::Registered)) => seen += 1,
            Ok(_) => {}
            Err(_) => panic!("not both registered"),
        }
    }
    let port_of = |c: &str| {
        c.rsplit_once(':').map(|(_, p)| {
            p.split(|ch: char| !ch.is_ascii_digit())
                .next()
                .unwrap()
                .to_string()
        })
    };
    let ca = ha.info().registered_contact;
    let cb = hb.info().registered_contact;
    // Same local port: the same TCP connection.
    assert_eq!(
        port_of(ca.split(';').next().unwrap()),
        port_of(cb.split(';').next().unwrap()),
        "{ca} / {cb}"
    );
    drop((ha, hb));
    u.close();
    m.close();
}

#[test]
fn registration_recovers_after_the_connection_drops() {
    let k = Kamailio::start("MD5");
    let registrar = format!("sip:127.0.0.1:{};transport=tcp", k.port);
    let tmp = TempDir::new("recover");
    let store = tmp.path().join("p.db");
    let (m, _mrx) = registry(&store, true);
    let id = provision(&m, &registrar, "alice", "alicepw", 300);
    let mh = m.profile(id).unwrap();
    mh.set_u32(keys::RETRY_BASE_SECONDS, 1).unwrap();
    m.save(&mh).unwrap();
    let (u, rx) = registry(&store, false);
    let h = u.profile(id).unwrap();
    u.enable(&h).unwrap();
    assert!(wait_for(&rx, Seen::Event(id, Event::Registered), WAIT));
    k.stop(); // the TCP connection drops
    assert!(wait_for(&rx, Seen::Event(id, Event::Deregistered), WAIT));
    assert_eq!(h.status(), Status::RegistrationInProgress);
    assert_eq!(h.last_error(), Error::Disconnected.code());
    assert!(u.is_enabled(&h));
    k.start_again();
    assert!(wait_for(
        &rx,
        Seen::Event(id, Event::Registered),
        Duration::from_secs(30)
    ));
    assert!(k.bindings().contains(&support::contact_user(&h)));
    assert_eq!(h.last_error(), 0);
    drop((h, mh));
    u.close();
    m.close();
}

/// Contract §7.6: the access point keys name a network interface, and the
/// profile's traffic leaves through it.
#[test]
fn access_point_binds_traffic_to_a_network_interface() {
    let k = Kamailio::start("MD5");
    let tmp = TempDir::new("iface");
    let store = tmp.path().join("p.db");
    let (m, _mrx) = registry(&store, true);
    let (u, rx) = registry(&store, false);
    let with_iface = |registrar: &str, name: Option<&str>, index: u32| {
        let id = provision(&m, registrar, "alice", "alicepw", 300);
        let h = m.profile(id).unwrap();
        {
            if let Some(n) = name {
                h.set_str(keys::ACCESS_POINT_NAME, n).unwrap();
            }
            h.set_u32(keys::ACCESS_POINT_ID, index).unwrap();
        }
        m.save(&h).unwrap();
        id
    };
    // Bound to the loopback interface (by name, UDP and TCP; by index): registers.
    let tcp = format!("sip:127.0.0.1:{};transport=tcp", k.port);
    for (registrar, name, index) in [
        (k.registrar(), Some("lo"), 0),
        (tcp, Some("lo"), 0),
        (k.registrar(), None, 1),
    ] {
        let id = with_iface(&registrar, name, index);
        let h = u.profile(id).unwrap();
        u.enable(&h).unwrap();
        assert!(
            wait_for(&rx, Seen::Event(id, Event::Registered), WAIT),
            "{registrar} {name:?} {index}"
        );
        u.disable(&h).unwrap();
    }
    // No such interface: enable refuses.
    let id = with_iface(&k.registrar(), Some("no-such-if0"), 0);
    let h = u.profile(id).unwrap();
    assert_eq!(u.enable(&h), Err(Error::Argument));
    // Bound to another interface, loopback is out of reach: no registration.
    let other = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n != "lo");
    if let Some(other) = other {
        let id = with_iface(&k.registrar(), Some(&other), 0);
        let h = u.profile(id).unwrap();
        u.enable(&h).unwrap();
        assert!(
            !wait_for(
                &rx,
                Seen::Event(id, Event::Registered),
                Duration::from_secs(3)
            ),
            "reached loopback through {other}"
        );
        assert!(!k.bindings().contains(&support::contact_user(&h)));
    } else {
        eprintln!("only the loopback interface exists: the negative half is not checked");
    }
    u.close();
    m.close();
}
