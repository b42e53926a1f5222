//! Requests to a registered Contact, from real peers: SIPp sending OPTIONS,
//! INVITE, an in-dialog BYE and an unknown method to our Contact; Kamailio
//! probing its contacts with OPTIONS (usrloc keep-alives, over UDP and over
//! our TCP flow). And
//! `SIP_KEY_CONTACT_URI`: the application's own Contact registered instead.

mod support;

use sipprofile::client::Event;
use sipprofile::profile::keys;
use std::time::Duration;
use support::{Kamailio, Seen, Sipp, TempDir, provision, registry, wait_for};

const WAIT: Duration = Duration::from_secs(15);

/// "127.0.0.1:PORT" of a registered Contact "<sip:user@127.0.0.1:PORT…>…".
fn contact_address(contact: &str) -> String {
    let at = contact.find('@').expect("user@host") + 1;
    let rest = &contact[at..];
    let end = rest.find(['>', ';']).unwrap_or(rest.len());
    rest[..end].to_string()
}

#[test]
fn requests_to_the_contact_get_final_responses() {
    let k = Kamailio::start("MD5");
    let tmp = TempDir::new("contact");
    let store = tmp.path().join("p.db");
    let (m, _mrx) = registry(&store, true);
    let id = provision(&m, &k.registrar(), "alice", "alicepw", 300);
    let (u, rx) = registry(&store, false);
    let h = u.profile(id).unwrap();
    u.enable(&h).unwrap();
    assert!(wait_for(&rx, Seen::Event(id, Event::Registered), WAIT));
    let contact = h.info().registered_contact;
    let user = support::contact_user(&h);
    let mut sipp = Sipp::start_uac(
        "requests_to_contact_uac.xml",
        &contact_address(&contact),
        &user,
    );
    assert!(
        sipp.passed(Duration::from_secs(20)),
        "SIPp's requests to {contact} were not answered as expected"
    );
    // Still registered: the requests changed nothing.
    assert!(k.bindings().contains(&user));
    drop(h);
    u.close();
    m.close();
}

#[test]
fn kamailio_probes_are_answered_and_the_applications_contact_is_registered() {
    // usrloc sends OPTIONS to every contact each second and drops one that
    // has not answered for 3 s.
    let k = Kamailio::start_env("MD5", 60, 1, &[("KAMAILIO_KEEPALIVE", "3")]);
    let tmp = TempDir::new("contact");
    let store = tmp.path().join("p.db");
    let (m, _mrx) = registry(&store, true);
    let udp = provision(&m, &k.registrar(), "alice", "alicepw", 300);
    let tcp = provision(
        &m,
        &format!("{};transport=tcp", k.registrar()),
        "user1",
        "pw1",
        300,
    );
    // The application's own SIP stack, which is not running: nobody answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let app_contact = format!(
        "sip:bobapp@127.0.0.1:{}",
        silent.local_addr().unwrap().port()
    );
    let app = provision(&m, &k.registrar(), "bob", "bobpw", 300);
    {
        let h = m.profile(app).unwrap();
        assert_eq!(
            h.set_str(keys::CONTACT_URI, "bob@nowhere"),
            Err(sipprofile::Error::Argument)
        );
        h.set_str(keys::CONTACT_URI, &app_contact).unwrap();
        m.save(&h).unwrap();
    }
    let (u, rx) = registry(&store, false);
    let handles: Vec<_> = [udp, tcp, app]
        .iter()
        .map(|id| {
            let h = u.profile(*id).unwrap();
            u.enable(&h).unwrap();
            assert!(
                wait_for(&rx, Seen::Event(*id, Event::Registered), WAIT),
                "profile {id} not registered"
            );
            h
        })
        .collect();
    let bindings = k.bindings();
    assert!(bindings.contains(&app_contact), "{bindings}");
    let registered = handles[2].info().registered_contact;
    assert!(registered.contains(&app_contact), "{registered}");
    let ours: Vec<String> = handles[..2].iter().map(support::contact_user).collect();
    // Kamailio logs each probe answered (usrloc's keep-alive round trip):
    // ours answer over UDP and over our TCP flow; past its 3 s they stay.
    std::thread::sleep(Duration::from_secs(5));
    let log = std::fs::read_to_string(k.dir.path().join("kamailio.log")).unwrap();
    let answered = |proto: &str| {
        log.lines()
            .filter(|l| l.contains("keepalive roundtrip") && l.contains(proto))
            .count()
    };
    assert!(answered("remote-addr: [udp:") >= 2, "{log}");
    assert!(answered("remote-addr: [tcp:") >= 2, "{log}");
    let bindings = k.bindings();
    for user in &ours {
        assert!(
            bindings.contains(user.as_str()),
            "{user} dropped:\n{bindings}"
        );
    }
    drop(handles);
    u.close();
    m.close();
}
