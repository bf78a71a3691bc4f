//! A minimal Structured Field Values parser (RFC 9651, formerly RFC 8941):
//! lists and dictionaries of bare items with parameters, which is all the
//! RateLimit drafts use. Inner lists and display strings are not supported;
//! a field line holding one fails to parse, like any malformed line.

use super::number::uint;

/// A bare item (RFC 9651 §3.3), reduced to what the RateLimit fields need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Item<'a> {
    /// A non-negative integer that fits in a `u64`.
    Uint(u64),
    /// A token, or a string's contents between the quotes (escapes kept).
    Name(&'a [u8]),
    /// Any other valid bare item: a negative, oversized or decimal number, a
    /// byte sequence, a boolean or a date.
    Other,
}

/// One list or dictionary member.
#[derive(Debug, Clone, Copy)]
pub(super) struct Member<'a> {
    /// The dictionary key; empty for a list member.
    pub(super) key: &'a [u8],
    /// The member's value (`Other`, standing for boolean true, for a
    /// dictionary key without `=`).
    pub(super) value: Item<'a>,
    /// The raw, already validated parameters, from the first `;`.
    params: &'a [u8],
}

impl<'a> Member<'a> {
    /// The value of parameter `key` (the last one if repeated, RFC 9651
    /// §4.2.3.2).
    pub(super) fn param(&self, key: &[u8]) -> Option<Item<'a>> {
        let mut cur = Cursor(self.params);
        let mut found = None;
        while cur.eat(b';') {
            cur.skip_sp();
            let k = cur.key()?;
            let v = if cur.eat(b'=') {
                cur.bare_item()?
            } else {
                Item::Other
            };
            if k == key {
                found = Some(v);
            }
        }
        found
    }
}

/// The members of a structured-field list, or `None` if `field` is not one.
pub(super) fn list(field: &[u8]) -> Option<Members<'_>> {
    Members::new(field, false)
}

/// The members of a structured-field dictionary, or `None` if `field` is not
/// one.
pub(super) fn dictionary(field: &[u8]) -> Option<Members<'_>> {
    Members::new(field, true)
}

/// Iterator over the members of a field already known to be valid.
#[derive(Debug, Clone)]
pub(super) struct Members<'a> {
    cur: Cursor<'a>,
    dict: bool,
    after_comma: bool,
}

impl<'a> Members<'a> {
    fn new(field: &'a [u8], dict: bool) -> Option<Self> {
        // RFC 9651 §4.2: surrounding spaces are discarded.
        let members = Members {
            cur: Cursor(field.trim_ascii()),
            dict,
            after_comma: false,
        };
        // Validate the whole line first: a malformed field is ignored whole
        // (§4.2), never half-read.
        let mut probe = members.clone();
        while let Some(step) = probe.step() {
            step.ok()?;
        }
        Some(members)
    }

    /// The next member, `Some(Err(()))` if the field is malformed there.
    fn step(&mut self) -> Option<Result<Member<'a>, ()>> {
        if self.cur.0.is_empty() {
            // A trailing comma is an error (§4.2.1).
            return self.after_comma.then_some(Err(()));
        }
        let result = self.member();
        if result.is_err() {
            self.cur = Cursor(&[]);
            self.after_comma = false;
        }
        Some(result)
    }

    fn member(&mut self) -> Result<Member<'a>, ()> {
        let member = self.cur.member(self.dict).ok_or(())?;
        self.cur.skip_ows();
        self.after_comma = self.cur.eat(b',');
        if !self.after_comma && !self.cur.0.is_empty() {
            return Err(());
        }
        self.cur.skip_ows();
        Ok(member)
    }
}

impl<'a> Iterator for Members<'a> {
    type Item = Member<'a>;

    fn next(&mut self) -> Option<Member<'a>> {
        self.step()?.ok()
    }
}

/// The unparsed rest of a field.
#[derive(Debug, Clone, Copy)]
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.0.first().copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        if hit {
            self.0 = self.0.get(1..).unwrap_or_default();
        }
        hit
    }

    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a [u8] {
        let at = self
            .0
            .iter()
            .position(|&b| !keep(b))
            .unwrap_or(self.0.len());
        let (taken, rest) = self.0.split_at(at);
        self.0 = rest;
        taken
    }

    fn skip_sp(&mut self) {
        self.take_while(|b| b == b' ');
    }

    fn skip_ows(&mut self) {
        self.take_while(|b| b == b' ' || b == b'\t');
    }

    fn member(&mut self, dict: bool) -> Option<Member<'a>> {
        let (key, value) = if dict {
            let key = self.key()?;
            let value = if self.eat(b'=') {
                self.bare_item()?
            } else {
                Item::Other
            };
            (key, value)
        } else {
            (&[][..], self.bare_item()?)
        };
        let params = self.params()?;
        Some(Member { key, value, params })
    }

    /// Parameters (§4.2.3.2), returned raw for [`Member::param`] to re-read.
    fn params(&mut self) -> Option<&'a [u8]> {
        let start = self.0;
        while self.eat(b';') {
            self.skip_sp();
            self.key()?;
            if self.eat(b'=') {
                self.bare_item()?;
            }
        }
        start.get(..start.len() - self.0.len())
    }

    /// `key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" )`
    fn key(&mut self) -> Option<&'a [u8]> {
        if !matches!(self.peek()?, b'a'..=b'z' | b'*') {
            return None;
        }
        Some(
            self.take_while(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'*')),
        )
    }

    /// A bare item (§4.2.3.1).
    fn bare_item(&mut self) -> Option<Item<'a>> {
        match self.peek()? {
            b'-' | b'0'..=b'9' => self.number(),
            b'"' => self.string(),
            b'A'..=b'Z' | b'a'..=b'z' | b'*' => Some(Item::Name(self.take_while(is_token_char))),
            b':' => {
                self.bump();
                self.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
                self.eat(b':').then_some(Item::Other)
            }
            b'?' => {
                self.bump();
                matches!(self.bump()?, b'0' | b'1').then_some(Item::Other)
            }
            // RFC 9651 §3.3.7 date: `@` then an integer.
            b'@' => {
                self.bump();
                self.number().map(|_| Item::Other)
            }
            _ => None,
        }
    }

    /// Integer or decimal (§4.2.4). Digit counts are not limited to RFC 9651's
    /// 15 (leniency); only a non-negative integer that fits a `u64` is kept.
    fn number(&mut self) -> Option<Item<'a>> {
        let negative = self.eat(b'-');
        let int = self.take_while(|b| b.is_ascii_digit());
        if int.is_empty() {
            return None;
        }
        if self.eat(b'.') {
            return (!self.take_while(|b| b.is_ascii_digit()).is_empty()).then_some(Item::Other);
        }
        Some(match uint(int) {
            Some(n) if !negative => Item::Uint(n),
            _ => Item::Other,
        })
    }

    /// A string (§4.2.5): printable ASCII, with `\"` and `\\` escapes.
    fn string(&mut self) -> Option<Item<'a>> {
        self.bump();
        let start = self.0;
        loop {
            match self.bump()? {
                b'\\' => {
                    if !matches!(self.bump()?, b'"' | b'\\') {
                        return None;
                    }
                }
                b'"' => break,
                0x20..=0x7e => {}
                _ => return None,
            }
        }
        // Everything consumed but the closing quote (`self.0` is a suffix of
        // `start`, so the subtraction cannot underflow).
        let consumed = start.len() - self.0.len();
        start.get(..consumed.checked_sub(1)?).map(Item::Name)
    }
}

/// `tchar` (RFC 9110 §5.6.2) plus `:` and `/`, as sf-token allows.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
                | b':'
                | b'/'
        )
}
