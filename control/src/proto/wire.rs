//! Protocol buffers wire format: varints and tagged fields.

use super::ProtoError;

/// One field as it appears on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Payload<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self.buf.get(self.pos).ok_or(ProtoError::Truncated)?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtoError::Malformed("varint longer than 10 bytes".into()))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len()).ok_or(ProtoError::Truncated)?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// The next (field number, payload), or None at the end.
    pub fn field(&mut self) -> Result<Option<(u32, Payload<'a>)>, ProtoError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = u32::try_from(key >> 3).map_err(|_| ProtoError::Malformed(format!("field number {} out of range", key >> 3)))?;
        let payload = match key & 7 {
            0 => Payload::Varint(self.varint()?),
            1 => {
                let b = self.take(8)?;
                Payload::Fixed64(u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| ProtoError::Truncated)?;
                Payload::Bytes(self.take(len)?)
            }
            5 => {
                let b = self.take(4)?;
                Payload::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            other => return Err(ProtoError::Malformed(format!("unsupported wire type {other} for field {number}"))),
        };
        Ok(Some((number, payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_varints_and_length_delimited_fields() {
        // field 1 varint 300, field 2 bytes "hi"
        let buf = [0x08, 0xac, 0x02, 0x12, 0x02, b'h', b'i'];
        let mut r = Reader::new(&buf);
        assert_eq!(r.field().ok().flatten(), Some((1, Payload::Varint(300))));
        assert_eq!(r.field().ok().flatten(), Some((2, Payload::Bytes(b"hi"))));
        assert_eq!(r.field().ok().flatten(), None);
        assert!(matches!(Reader::new(&[0x12, 0x05, b'a']).field(), Err(ProtoError::Truncated)));
        assert!(Reader::new(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).field().is_err());
    }
}

/// Builds protocol buffers wire format.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn varint(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.buf.push(byte);
                return;
            }
            self.buf.push(byte | 0x80);
        }
    }

    fn key(&mut self, number: u32, wire_type: u64) {
        self.varint((u64::from(number) << 3) | wire_type);
    }

    pub fn uint(&mut self, number: u32, v: u64) {
        self.key(number, 0);
        self.varint(v);
    }

    pub fn fixed64(&mut self, number: u32, v: u64) {
        self.key(number, 1);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    pub fn bytes(&mut self, number: u32, b: &[u8]) {
        self.key(number, 2);
        self.varint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }
}
