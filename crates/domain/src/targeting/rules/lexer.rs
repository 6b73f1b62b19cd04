//! Splits rule text into tokens, each with its byte span in the source.

use super::Located;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    And,
    Or,
    Not,
    In,
    StartsWith,
    True,
    False,
    Lt,
    Le,
    Gt,
    Ge,
    EqEq,
    Ne,
    Plus,
    Minus,
    Star,
    Slash,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Eof,
}

impl Tok {
    pub fn describe(&self) -> String {
        match self {
            Tok::Num(n) => format!("number {n}"),
            Tok::Str(_) => "text".into(),
            Tok::Ident(s) => format!("'{s}'"),
            Tok::Eof => "the end of the rule".into(),
            other => format!("'{}'", symbol(other)),
        }
    }
}

fn symbol(t: &Tok) -> &'static str {
    match t {
        Tok::And => "and",
        Tok::Or => "or",
        Tok::Not => "not",
        Tok::In => "in",
        Tok::StartsWith => "startswith",
        Tok::True => "true",
        Tok::False => "false",
        Tok::Lt => "<",
        Tok::Le => "<=",
        Tok::Gt => ">",
        Tok::Ge => ">=",
        Tok::EqEq => "==",
        Tok::Ne => "!=",
        Tok::Plus => "+",
        Tok::Minus => "-",
        Tok::Star => "*",
        Tok::Slash => "/",
        Tok::LParen => "(",
        Tok::RParen => ")",
        Tok::LBracket => "[",
        Tok::RBracket => "]",
        Tok::Comma => ",",
        _ => "?",
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
}

/// Longest text literal, in bytes: area codes and programme codes are short.
const MAX_TEXT_LITERAL: usize = 200;

pub fn lex(src: &str) -> Result<Vec<Token>, Located> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let at = |end: usize| Span { start, end };
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let tok = if c.is_ascii_digit() {
            i = scan_number(bytes, i);
            let text = &src[start..i];
            let n: f64 = text
                .parse()
                .map_err(|_| Located::new(at(i), format!("'{text}' is not a number")))?;
            Tok::Num(n)
        } else if c.is_ascii_alphabetic() || c == b'_' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            keyword(&src[start..i])
        } else if c == b'"' || c == b'\'' {
            let (s, end) = scan_string(src, i)?;
            i = end;
            Tok::Str(s)
        } else {
            let (tok, len) = operator(bytes, i).ok_or_else(|| unexpected_char(src, start))?;
            i += len;
            tok
        };
        out.push(Token { tok, span: at(i) });
    }
    out.push(Token {
        tok: Tok::Eof,
        span: Span {
            start: src.len(),
            end: src.len(),
        },
    });
    Ok(out)
}

fn scan_number(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
    }
    i
}

fn keyword(word: &str) -> Tok {
    match word {
        "and" => Tok::And,
        "or" => Tok::Or,
        "not" => Tok::Not,
        "in" => Tok::In,
        "startswith" => Tok::StartsWith,
        "true" => Tok::True,
        "false" => Tok::False,
        _ => Tok::Ident(word.to_string()),
    }
}

/// A quoted literal with `\"`, `\'` and `\\` escapes; returns the text and the end offset.
fn scan_string(src: &str, open: usize) -> Result<(String, usize), Located> {
    let quote = src.as_bytes()[open] as char;
    let mut out = String::new();
    let mut chars = src[open + 1..].char_indices();
    while let Some((k, ch)) = chars.next() {
        let pos = open + 1 + k;
        match ch {
            c if c == quote => return Ok((out, pos + 1)),
            '\\' => match chars.next() {
                Some((_, e @ ('"' | '\'' | '\\'))) => out.push(e),
                _ => {
                    return Err(Located::new(
                        Span {
                            start: pos,
                            end: pos + 1,
                        },
                        "unknown escape: only \\\", \\' and \\\\ are allowed".into(),
                    ))
                }
            },
            '\n' => break,
            c => out.push(c),
        }
        if out.len() > MAX_TEXT_LITERAL {
            return Err(Located::new(
                Span {
                    start: open,
                    end: pos,
                },
                format!("text is longer than {MAX_TEXT_LITERAL} bytes"),
            ));
        }
    }
    Err(Located::new(
        Span {
            start: open,
            end: open + 1,
        },
        "text is not closed: add the closing quote".into(),
    ))
}

fn operator(b: &[u8], i: usize) -> Option<(Tok, usize)> {
    let next = b.get(i + 1).copied();
    Some(match (b[i], next) {
        (b'<', Some(b'=')) => (Tok::Le, 2),
        (b'>', Some(b'=')) => (Tok::Ge, 2),
        (b'=', Some(b'=')) => (Tok::EqEq, 2),
        (b'!', Some(b'=')) => (Tok::Ne, 2),
        (b'<', _) => (Tok::Lt, 1),
        (b'>', _) => (Tok::Gt, 1),
        (b'+', _) => (Tok::Plus, 1),
        (b'-', _) => (Tok::Minus, 1),
        (b'*', _) => (Tok::Star, 1),
        (b'/', _) => (Tok::Slash, 1),
        (b'(', _) => (Tok::LParen, 1),
        (b')', _) => (Tok::RParen, 1),
        (b'[', _) => (Tok::LBracket, 1),
        (b']', _) => (Tok::RBracket, 1),
        (b',', _) => (Tok::Comma, 1),
        _ => return None,
    })
}

fn unexpected_char(src: &str, at: usize) -> Located {
    let ch = src[at..].chars().next().unwrap_or('?');
    let span = Span {
        start: at,
        end: at + ch.len_utf8(),
    };
    let hint = match ch {
        '=' => " (write == to compare)",
        '&' => " (write and)",
        '|' => " (write or)",
        '!' => " (write not, or != to compare)",
        _ => "",
    };
    Located::new(span, format!("unexpected character '{ch}'{hint}"))
}
