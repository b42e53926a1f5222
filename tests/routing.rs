//! What the registrar's 2xx carries, and how requests are routed, against
//! Kamailio: Service-Route, P-Associated-URI (ims), GRUUs, outbound proxy.

mod support;

use sipprofile::client::Event;
use sipprofile::profile::{TypeInfo, access, keys};
use std::time::Duration;
use support::{Kamailio, Seen, TempDir, provision, registry, wait_for};

const WAIT: Duration = Duration::from_secs(15);

#[test]
fn service_route_and_gruus_are_captured() {
    let k = Kamailio::start("MD5");
    let tmp = TempDir::new("route");
    let store = tmp.path().join("p.db");
    let (m, _mrx) = registry(&store, true);
    let id = provision(&m, &k.registrar(), "alice", "alicepw", 300);
    let (u, rx) = registry(&store, false);
    let h = u.profile(id).unwrap();
    u.enable(&h).unwrap();
    assert!(wait_for(&rx, Seen::Event(id, Event::Registered), WAIT));
    {
        // One copy: all of it from the same registration state.
        let c = h.copy();
        let v = c.view();
        let routes = access::get_str_array(&v, keys::SERVICE_ROUTE).unwrap();
        assert_eq!(routes, vec![format!("<sip:orig@127.0.0.1:{};lr>", k.port)]);
        // IETF profiles register the AOR itself (ref §4.1 key 9).
        let aors = access::get_str_array(&v, keys::REGISTERED_AORS).unwrap();
        assert_eq!(aors, vec!["sip:alice@sipprofile.test".to_string()]);
        // +sip.instance and Supported: gruu give GRUUs (RFC 5627).
        let pub_gruu = access::get_str(&v, keys::PUB_GRUU).unwrap();
        let temp_gruu = access::get_str(&v, keys::TEMP_GRUU).unwrap();
        assert!(pub_gruu.contains(";gr="), "{pub_gruu}");
        assert!(temp_gruu.starts_with("sip:"), "{temp_gruu}");
    }
    drop(h);
    u.close();
    m.close();
}

#[test]
fn ims_profile_uses_private_identity_and_p_associated_uri() {
    let k = Kamailio::start("MD5");
    let tmp = TempDir::new("ims");
    let store = tmp.path().join("p.db");
    let (m, _mrx) = registry(&store, true);
    let h = m.create(&TypeInfo::ims()).unwrap();
    h.set_str(keys::USER_AOR, "sip:bob@sipprofile.test")
        .unwrap();
    h.set_str(keys::PRIVATE_IDENTITY, "bob").unwrap();
    h.set_server_str(keys::SERVER_REGISTRAR, keys::SERVER_ADDRESS, &k.registrar())
        .unwrap();
    h.set_server_str(keys::SERVER_REGISTRAR, keys::DIGEST_PASSWORD, "bobpw")
        .unwrap();
    // ims needs an outbound proxy (ref §5.10); here the registrar itself.
    h.set_server_str(
        keys::SERVER_OUTBOUND_PROXY,
        keys::SERVER_ADDRESS,
        &k.registrar(),
    )
    .unwrap();
    assert_eq!(h.get_u32(keys::REGISTRATION_EXPIRES), Ok(600_000));
    h.set_u32(keys::REGISTRATION_EXPIRES, 600).unwrap();
    m.save(&h).unwrap();
    let id = h.id();
    let (u, rx) = registry(&store, false);
    let p = u.profile(id).unwrap();
    u.enable(&p).unwrap();
    assert!(wait_for(&rx, Seen::Event(id, Event::Registered), WAIT));
    let aors = p.get_str_array(keys::REGISTERED_AORS).unwrap();
    assert_eq!(
        aors,
        vec![
            "sip:bob@sipprofile.test".to_string(),
            "tel:+15550100".to_string()
        ]
    );
    drop((h, p));
    u.close();
    m.close();
}

#[test]
fn outbound_proxy_is_the_next_hop() {
    let k = Kamailio::start("MD5");
    let tmp = TempDir::new("proxy");
    let store = tmp.path().join("p.db");
    let (m, _mrx) = registry(&store, true);
    // The registrar's name does not resolve: only the proxy can carry it.
    let id = provision(&m, "sip:sipprofile.test", "alice", "alicepw", 300);
    let h = m.profile(id).unwrap();
    h.set_server_str(
        keys::SERVER_OUTBOUND_PROXY,
        keys::SERVER_ADDRESS,
        &k.registrar(),
    )
    .unwrap();
    m.save(&h).unwrap();
    let (u, rx) = registry(&store, false);
    let p = u.profile(id).unwrap();
    u.enable(&p).unwrap();
    assert!(wait_for(&rx, Seen::Event(id, Event::Registered), WAIT));
    assert!(k.bindings().contains(&support::contact_user(&p)));
    drop((h, p));
    u.close();
    m.close();
}
