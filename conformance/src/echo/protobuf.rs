//! Just enough protobuf for the gRPC echo service: a writer for the response
//! messages and a reader (used to check them, and to skip request fields).

#[derive(Default)]
pub struct Writer(Vec<u8>);

const LENGTH_DELIMITED: u64 = 2;

impl Writer {
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.0.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.0.push(value as u8);
    }

    fn key(&mut self, field: u32, wire_type: u64) {
        self.varint((u64::from(field) << 3) | wire_type);
    }

    /// A proto3 string field; the empty string is the default and is not written.
    pub fn string(&mut self, field: u32, value: &str) -> &mut Self {
        if !value.is_empty() {
            self.bytes(field, value.as_bytes());
        }
        self
    }

    /// A sub-message (written even when empty: it is set).
    pub fn message(&mut self, field: u32, message: Writer) -> &mut Self {
        self.bytes(field, &message.0);
        self
    }

    fn bytes(&mut self, field: u32, value: &[u8]) {
        self.key(field, LENGTH_DELIMITED);
        self.varint(value.len() as u64);
        self.0.extend_from_slice(value);
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed protobuf message")]
pub struct Malformed;

/// Splits a message into `(field number, value)` pairs, in order.
pub fn fields(mut buf: &[u8]) -> Result<Vec<(u32, Value<'_>)>, Malformed> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = read_varint(&mut buf)?;
        let field = u32::try_from(key >> 3).map_err(|_| Malformed)?;
        let value = match key & 7 {
            0 => Value::Varint(read_varint(&mut buf)?),
            1 => Value::Fixed64(u64::from_le_bytes(take(&mut buf, 8)?.try_into().map_err(|_| Malformed)?)),
            2 => {
                let len = usize::try_from(read_varint(&mut buf)?).map_err(|_| Malformed)?;
                Value::Bytes(take(&mut buf, len)?)
            }
            5 => Value::Fixed32(u32::from_le_bytes(take(&mut buf, 4)?.try_into().map_err(|_| Malformed)?)),
            _ => return Err(Malformed),
        };
        if field == 0 {
            return Err(Malformed);
        }
        out.push((field, value));
    }
    Ok(out)
}

fn read_varint(buf: &mut &[u8]) -> Result<u64, Malformed> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = buf.split_first().ok_or(Malformed)?;
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(value);
        }
    }
    Err(Malformed)
}

fn take<'a>(buf: &mut &'a [u8], len: usize) -> Result<&'a [u8], Malformed> {
    if buf.len() < len {
        return Err(Malformed);
    }
    let (head, rest) = buf.split_at(len);
    *buf = rest;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_round_trip() {
        let mut inner = Writer::default();
        inner.string(1, "ns").string(4, "pod-a");
        let mut outer = Writer::default();
        outer.string(1, "/svc/Echo").string(3, "").message(4, inner);
        let bytes = outer.into_bytes();
        let top = fields(&bytes).unwrap();
        assert_eq!(top.len(), 2, "empty string is not written");
        assert_eq!(top[0], (1, Value::Bytes(b"/svc/Echo")));
        let Value::Bytes(context) = top[1].1 else { panic!("context is length-delimited") };
        assert_eq!(fields(context).unwrap(), vec![(1, Value::Bytes(b"ns")), (4, Value::Bytes(b"pod-a"))]);
    }

    #[test]
    fn long_values_use_multi_byte_lengths() {
        let long = "x".repeat(300);
        let mut writer = Writer::default();
        writer.string(2, &long);
        let bytes = writer.into_bytes();
        assert_eq!(&bytes[..3], &[0x12, 0xac, 0x02]);
        assert_eq!(fields(&bytes).unwrap(), vec![(2, Value::Bytes(long.as_bytes()))]);
    }

    #[test]
    fn other_wire_types_and_errors() {
        let bytes = [0x08, 0x96, 0x01, 0x15, 1, 0, 0, 0, 0x19, 2, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            fields(&bytes).unwrap(),
            vec![(1, Value::Varint(150)), (2, Value::Fixed32(1)), (3, Value::Fixed64(2))]
        );
        assert_eq!(fields(&[0x0a, 0x05, b'a']), Err(Malformed), "truncated bytes");
        assert_eq!(fields(&[0x08]), Err(Malformed), "truncated varint");
        assert_eq!(fields(&[0x0b]), Err(Malformed), "group wire type");
        assert_eq!(fields(&[0x00, 0x00]), Err(Malformed), "field 0");
    }
}
