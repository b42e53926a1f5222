//! SIP URIs (RFC 3261 §19.1): parsing, printing and §19.1.4 equality.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
}

#[derive(Clone, Debug)]
pub struct Uri {
    pub scheme: Scheme,
    pub user: Option<String>,
    pub password: Option<String>,
    /// Host as written; an IPv6 reference keeps its brackets.
    pub host: String,
    pub port: Option<u16>,
    pub params: Vec<(String, Option<String>)>,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct UriError;

fn is_unreserved_or_escaped(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()%&=+$,;?/:".contains(&b)
}

impl Uri {
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        let s = s.trim();
        if s.is_empty() || s.len() > 2048 || s.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(UriError);
        }
        let (scheme, rest) = s.split_once(':').ok_or(UriError)?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "sip" => Scheme::Sip,
            "sips" => Scheme::Sips,
            "tel" => Scheme::Tel,
            _ => return Err(UriError),
        };
        if scheme == Scheme::Tel {
            let (num, params) = split_params(rest);
            if num.is_empty()
                || !num
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b"+-.()*#".contains(&b))
            {
                return Err(UriError);
            }
            return Ok(Uri {
                scheme,
                user: Some(num.to_owned()),
                password: None,
                host: String::new(),
                port: None,
                params: parse_params(params)?,
                headers: Vec::new(),
            });
        }
        let (before_headers, headers) = match rest.split_once('?') {
            Some((a, h)) => (a, Some(h)),
            None => (rest, None),
        };
        let (userinfo, hostpart) = match before_headers.rfind('@') {
            Some(i) => (Some(&before_headers[..i]), &before_headers[i + 1..]),
            None => (None, before_headers),
        };
        let (user, password) = match userinfo {
            Some(ui) => {
                let (u, p) = match ui.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (ui, None),
                };
                if u.is_empty() || !u.bytes().all(is_unreserved_or_escaped) {
                    return Err(UriError);
                }
                (Some(u.to_owned()), p.map(str::to_owned))
            }
            None => (None, None),
        };
        let (hostport, params) = split_params(hostpart);
        let (host, port) = split_host_port(hostport)?;
        let mut hdrs = Vec::new();
        if let Some(h) = headers {
            for kv in h.split('&') {
                let (k, v) = kv.split_once('=').ok_or(UriError)?;
                hdrs.push((k.to_owned(), v.to_owned()));
            }
        }
        Ok(Uri {
            scheme,
            user,
            password,
            host: host.to_owned(),
            port,
            params: parse_params(params)?,
            headers: hdrs,
        })
    }

    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// Host without IPv6 brackets, for resolving.
    pub fn host_unbracketed(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }

    /// RFC 3261 §19.1.4 equality.
    pub fn equivalent(&self, other: &Uri) -> bool {
        if self.scheme != other.scheme {
            return false;
        }
        if self.scheme == Scheme::Tel {
            return self.user == other.user;
        }
        let unescape = |s: &Option<String>| s.as_deref().map(percent_decode);
        if unescape(&self.user) != unescape(&other.user)
            || unescape(&self.password) != unescape(&other.password)
        {
            return false;
        }
        if !self.host.eq_ignore_ascii_case(&other.host) || self.port != other.port {
            return false;
        }
        // user, ttl, method, maddr and transport must match when either has them;
        // any other parameter only when both have it.
        let special = ["user", "ttl", "method", "maddr", "transport"];
        for name in special {
            let a = self.param(name).map(|v| v.map(str::to_ascii_lowercase));
            let b = other.param(name).map(|v| v.map(str::to_ascii_lowercase));
            if a != b {
                return false;
            }
        }
        for (k, v) in &self.params {
            if special.iter().any(|s| s.eq_ignore_ascii_case(k)) {
                continue;
            }
            if let Some(ov) = other.param(k) {
                let a = v.as_deref().map(str::to_ascii_lowercase);
                let b = ov.map(str::to_ascii_lowercase);
                if a != b {
                    return false;
                }
            }
        }
        // Headers: every header in either must be in both, same value.
        let hdr_eq = |a: &Uri, b: &Uri| {
            a.headers.iter().all(|(k, v)| {
                b.headers.iter().any(|(k2, v2)| {
                    k.eq_ignore_ascii_case(k2) && percent_decode(v) == percent_decode(v2)
                })
            })
        };
        hdr_eq(self, other) && hdr_eq(other, self)
    }
}

fn split_params(s: &str) -> (&str, &str) {
    match s.find(';') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    }
}

fn parse_params(s: &str) -> Result<Vec<(String, Option<String>)>, UriError> {
    let mut out = Vec::new();
    if s.is_empty() {
        return Ok(out);
    }
    for p in s.split(';') {
        let (k, v) = match p.split_once('=') {
            Some((k, v)) => (k, Some(v.to_owned())),
            None => (p, None),
        };
        if k.is_empty() || !k.bytes().all(is_unreserved_or_escaped) {
            return Err(UriError);
        }
        out.push((k.to_owned(), v));
    }
    Ok(out)
}

fn split_host_port(s: &str) -> Result<(&str, Option<u16>), UriError> {
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']').ok_or(UriError)?;
        let host = &s[..=end];
        host[1..end]
            .parse::<std::net::Ipv6Addr>()
            .map_err(|_| UriError)?;
        match &s[end + 1..] {
            "" => (host, None),
            p if p.starts_with(':') => (host, Some(&p[1..])),
            _ => return Err(UriError),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty()
        || (!host.starts_with('[')
            && !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
    {
        return Err(UriError);
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().map_err(|_| UriError)?),
        None => None,
    };
    Ok((host, port))
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scheme {
            Scheme::Sip => f.write_str("sip:")?,
            Scheme::Sips => f.write_str("sips:")?,
            Scheme::Tel => {
                f.write_str("tel:")?;
                f.write_str(self.user.as_deref().unwrap_or(""))?;
                for (k, v) in &self.params {
                    write!(f, ";{k}")?;
                    if let Some(v) = v {
                        write!(f, "={v}")?;
                    }
                }
                return Ok(());
            }
        }
        if let Some(u) = &self.user {
            f.write_str(u)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        f.write_str(&self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        for (k, v) in &self.params {
            write!(f, ";{k}")?;
            if let Some(v) = v {
                write!(f, "={v}")?;
            }
        }
        for (i, (k, v)) in self.headers.iter().enumerate() {
            write!(f, "{}{k}={v}", if i == 0 { '?' } else { '&' })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(a: &str, b: &str) -> bool {
        Uri::parse(a).unwrap().equivalent(&Uri::parse(b).unwrap())
    }

    #[test]
    fn parses_common_forms() {
        let u = Uri::parse("sip:alice@127.0.0.1:5070;transport=udp").unwrap();
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.host, "127.0.0.1");
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.param("transport"), Some(Some("udp")));
        let v = Uri::parse("sips:[::1]:5061").unwrap();
        assert_eq!(v.host_unbracketed(), "::1");
        assert!(Uri::parse("tel:+358-555-1234567").is_ok());
        assert!(Uri::parse("not a uri").is_err());
        assert!(Uri::parse("http://x").is_err());
        assert!(Uri::parse("sip:").is_err());
        assert!(Uri::parse("sip:a@b:99999").is_err());
        assert!(Uri::parse("sip:[zz]").is_err());
        assert_eq!(
            Uri::parse("sip:alice@Example.com;lr").unwrap().to_string(),
            "sip:alice@Example.com;lr"
        );
    }

    // The examples of RFC 3261 §19.1.4.
    #[test]
    fn rfc3261_equal_examples() {
        assert!(eq(
            "sip:%61lice@atlanta.com;transport=TCP",
            "sip:alice@AtLanTa.CoM;Transport=tcp"
        ));
        assert!(eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com;newparam=5"
        ));
        assert!(eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com;security=on"
        ));
        assert!(eq(
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"
        ));
    }

    #[test]
    fn rfc3261_unequal_examples() {
        assert!(!eq(
            "SIP:ALICE@AtLanTa.CoM;Transport=udp",
            "sip:alice@AtLanTa.CoM;Transport=UDP"
        ));
        assert!(!eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
        assert!(!eq(
            "sip:bob@biloxi.com",
            "sip:bob@biloxi.com;transport=udp"
        ));
        assert!(!eq(
            "sip:bob@biloxi.com",
            "sip:bob@biloxi.com:6000;transport=tcp"
        ));
        assert!(!eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com?Subject=next%20meeting"
        ));
        assert!(!eq("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"));
    }
}
