//! The subject of a client certificate as Kafka prints it (Java's `X500Principal.getName()`,
//! RFC 2253: `CN=client,O=Acme,C=GB`, last RDN first), read straight from the DER: the one
//! field the broker needs does not justify an X.509 library.

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const VERSION: u8 = 0xA0;

/// The RFC 2253 subject of DER certificate `der`, or `None` when it does not parse.
pub fn subject_dn(der: &[u8]) -> Option<String> {
    let (tag, certificate, _) = read(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, mut tbs, _) = read(certificate)?;
    if tag != SEQUENCE {
        return None;
    }
    // version (optional, [0]), serial, signature algorithm, issuer, validity, subject
    if tbs.first() == Some(&VERSION) {
        tbs = read(tbs)?.2;
    }
    for _ in 0..4 {
        tbs = read(tbs)?.2;
    }
    let (tag, name, _) = read(tbs)?;
    (tag == SEQUENCE).then_some(())?;
    name_to_rfc2253(name)
}

/// Formats the contents of a DER `Name` (a sequence of RDN sets).
fn name_to_rfc2253(mut name: &[u8]) -> Option<String> {
    let mut rdns = Vec::new();
    while !name.is_empty() {
        let (tag, mut set, rest) = read(name)?;
        (tag == SET).then_some(())?;
        let mut attributes = Vec::new();
        while !set.is_empty() {
            let (tag, attribute, rest) = read(set)?;
            (tag == SEQUENCE).then_some(())?;
            attributes.push(attribute_to_rfc2253(attribute)?);
            set = rest;
        }
        rdns.push(attributes.join("+"));
        name = rest;
    }
    rdns.reverse();
    Some(rdns.join(","))
}

fn attribute_to_rfc2253(attribute: &[u8]) -> Option<String> {
    let (tag, oid, value) = read(attribute)?;
    (tag == OID).then_some(())?;
    let (value_tag, content, _) = read(value)?;
    let whole_value = value;
    let oid = oid_to_string(oid)?;
    let keyword = match oid.as_str() {
        "2.5.4.3" => Some("CN"),
        "2.5.4.6" => Some("C"),
        "2.5.4.7" => Some("L"),
        "2.5.4.8" => Some("ST"),
        "2.5.4.10" => Some("O"),
        "2.5.4.11" => Some("OU"),
        "2.5.4.9" => Some("STREET"),
        "0.9.2342.19200300.100.1.25" => Some("DC"),
        "0.9.2342.19200300.100.1.1" => Some("UID"),
        _ => None,
    };
    match (keyword, decode_string(value_tag, content)) {
        (Some(keyword), Some(text)) => Some(format!("{keyword}={}", escape(&text))),
        // Java prints other attributes by OID, with the value's DER encoding in hex.
        _ => Some(format!("{oid}=#{}", hex(whole_value))),
    }
}

fn decode_string(tag: u8, content: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, IA5String, VisibleString
        0x0C | 0x13 | 0x16 | 0x1A => String::from_utf8(content.to_vec()).ok(),
        // TeletexString: Latin-1 in practice
        0x14 => Some(content.iter().map(|&b| char::from(b)).collect()),
        // BMPString: UTF-16BE
        0x1E => {
            let units: Vec<u16> = content
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// RFC 2253 escaping, as Java applies it.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn oid_to_string(oid: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for &byte in oid {
        value = value.checked_mul(128)? | u64::from(byte & 0x7F);
        if byte & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    if arcs.is_empty() {
        return None;
    }
    Some(
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One DER element: (tag, contents, what follows it).
fn read(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *input.first()?;
    let first = *input.get(1)?;
    let (length, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let count = usize::from(first & 0x7F);
        if count == 0 || count > 4 {
            return None;
        }
        let bytes = input.get(2..2 + count)?;
        let length = bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (length, 2 + count)
    };
    let end = header.checked_add(length)?;
    Some((tag, input.get(header..end)?, input.get(end..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if content.len() < 0x80 {
            out.push(content.len() as u8);
        } else {
            out.push(0x82);
            out.extend_from_slice(&(content.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(content);
        out
    }

    fn rdn(oid: &[u8], tag: u8, value: &str) -> Vec<u8> {
        let attribute = [tlv(OID, oid), tlv(tag, value.as_bytes())].concat();
        tlv(SET, &tlv(SEQUENCE, &attribute))
    }

    fn certificate(subject: &[u8]) -> Vec<u8> {
        let tbs = [
            tlv(VERSION, &tlv(0x02, &[2])),
            tlv(0x02, &[1, 2, 3]),
            tlv(SEQUENCE, &tlv(OID, &[0x2A, 0x86, 0x48])),
            tlv(SEQUENCE, &rdn(&[0x55, 4, 3], 0x0C, "issuer")),
            tlv(SEQUENCE, &[]),
            tlv(SEQUENCE, subject),
        ]
        .concat();
        tlv(
            SEQUENCE,
            &[tlv(SEQUENCE, &tbs), tlv(SEQUENCE, &[]), tlv(0x03, &[0])].concat(),
        )
    }

    #[test]
    fn the_subject_prints_last_rdn_first_as_java_does() {
        let subject = [
            rdn(&[0x55, 4, 6], 0x13, "GB"),
            rdn(&[0x55, 4, 10], 0x0C, "Acme, Inc"),
            rdn(&[0x55, 4, 3], 0x0C, "client-1"),
        ]
        .concat();
        assert_eq!(
            subject_dn(&certificate(&subject)).as_deref(),
            Some("CN=client-1,O=Acme\\, Inc,C=GB")
        );
    }

    #[test]
    fn unknown_attributes_print_as_oid_and_hex() {
        // emailAddress 1.2.840.113549.1.9.1 as IA5String "a@b"
        let email = rdn(
            &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x01],
            0x16,
            "a@b",
        );
        let subject = [email, rdn(&[0x55, 4, 3], 0x0C, "x")].concat();
        assert_eq!(
            subject_dn(&certificate(&subject)).as_deref(),
            Some("CN=x,1.2.840.113549.1.9.1=#1603614062")
        );
    }

    #[test]
    fn garbage_is_not_a_subject() {
        assert_eq!(subject_dn(&[]), None);
        assert_eq!(subject_dn(&[0x30, 0x85, 1, 2, 3, 4, 5]), None);
        assert_eq!(subject_dn(&[0x30, 0x10, 0x30]), None);
        let mut truncated = certificate(&rdn(&[0x55, 4, 3], 0x0C, "x"));
        truncated.truncate(truncated.len() - 8);
        assert_eq!(subject_dn(&truncated), None);
    }
}
