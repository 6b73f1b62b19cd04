//! Recursive-descent parser from tokens to an untyped syntax tree.
//!
//! Precedence, loosest first: `or`, `and`, `not`, comparisons (`< <= > >= == != in`, `not in`,
//! `startswith`; not chainable), `+ -`, `* /`, unary `-`.

use super::lexer::{Span, Tok, Token};
use super::{Located, MAX_DEPTH};

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Num(f64),
    Str(String),
    Bool(bool),
    Ident(String),
    Call {
        name: String,
        name_span: Span,
        args: Vec<Expr>,
    },
    List(Vec<Expr>),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    In,
    NotIn,
    StartsWith,
    Add,
    Sub,
    Mul,
    Div,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "or",
            BinOp::And => "and",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::In => "in",
            BinOp::NotIn => "not in",
            BinOp::StartsWith => "startswith",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
        }
    }
}

pub fn parse(tokens: &[Token]) -> Result<Expr, Located> {
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    let e = p.or()?;
    let t = p.peek();
    if t.tok != Tok::Eof {
        return Err(Located::new(
            t.span,
            format!(
                "expected the end of the rule or an operator, found {}",
                t.tok.describe()
            ),
        ));
    }
    Ok(e)
}

struct Parser<'t> {
    tokens: &'t [Token],
    pos: usize,
    depth: usize,
}

fn binary(op: BinOp, l: Expr, r: Expr) -> Expr {
    let span = l.span.to(r.span);
    Expr {
        kind: ExprKind::Binary(op, Box::new(l), Box::new(r)),
        span,
    }
}

impl<'t> Parser<'t> {
    fn peek(&self) -> &'t Token {
        // The lexer always ends the list with `Eof`, and the parser never moves past it.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn peek2(&self) -> &'t Tok {
        &self.tokens[(self.pos + 1).min(self.tokens.len() - 1)].tok
    }

    fn bump(&mut self) -> &'t Token {
        let t = self.peek();
        if t.tok != Tok::Eof {
            self.pos += 1;
        }
        t
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<Span, Located> {
        let t = self.peek();
        if t.tok == tok {
            self.bump();
            Ok(t.span)
        } else {
            Err(Located::new(
                t.span,
                format!("expected {what}, found {}", t.tok.describe()),
            ))
        }
    }

    /// Guards every level that can recurse, so hostile input cannot exhaust the stack.
    fn enter(&mut self) -> Result<(), Located> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Located::new(
                self.peek().span,
                format!("the rule is nested too deeply (more than {MAX_DEPTH} levels)"),
            ));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, Located> {
        self.enter()?;
        let mut l = self.and()?;
        while self.peek().tok == Tok::Or {
            self.bump();
            let r = self.and()?;
            l = binary(BinOp::Or, l, r);
        }
        self.depth -= 1;
        Ok(l)
    }

    fn and(&mut self) -> Result<Expr, Located> {
        let mut l = self.not()?;
        while self.peek().tok == Tok::And {
            self.bump();
            let r = self.not()?;
            l = binary(BinOp::And, l, r);
        }
        Ok(l)
    }

    fn not(&mut self) -> Result<Expr, Located> {
        if self.peek().tok != Tok::Not {
            return self.comparison();
        }
        let start = self.bump().span;
        self.enter()?;
        let inner = self.not()?;
        self.depth -= 1;
        Ok(Expr {
            span: start.to(inner.span),
            kind: ExprKind::Not(Box::new(inner)),
        })
    }

    fn comparison_op(&self) -> Option<(BinOp, usize)> {
        Some(match (&self.peek().tok, self.peek2()) {
            (Tok::Lt, _) => (BinOp::Lt, 1),
            (Tok::Le, _) => (BinOp::Le, 1),
            (Tok::Gt, _) => (BinOp::Gt, 1),
            (Tok::Ge, _) => (BinOp::Ge, 1),
            (Tok::EqEq, _) => (BinOp::Eq, 1),
            (Tok::Ne, _) => (BinOp::Ne, 1),
            (Tok::In, _) => (BinOp::In, 1),
            (Tok::Not, Tok::In) => (BinOp::NotIn, 2),
            (Tok::StartsWith, _) => (BinOp::StartsWith, 1),
            _ => return None,
        })
    }

    fn comparison(&mut self) -> Result<Expr, Located> {
        let l = self.additive()?;
        let Some((op, len)) = self.comparison_op() else {
            return Ok(l);
        };
        for _ in 0..len {
            self.bump();
        }
        let r = self.additive()?;
        if self.comparison_op().is_some() {
            return Err(Located::new(
                self.peek().span,
                "comparisons cannot be chained: join them with 'and'".into(),
            ));
        }
        Ok(binary(op, l, r))
    }

    fn additive(&mut self) -> Result<Expr, Located> {
        let mut l = self.multiplicative()?;
        loop {
            let op = match self.peek().tok {
                Tok::Plus => BinOp::Add,
                Tok::Minus => BinOp::Sub,
                _ => return Ok(l),
            };
            self.bump();
            let r = self.multiplicative()?;
            l = binary(op, l, r);
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, Located> {
        let mut l = self.unary()?;
        loop {
            let op = match self.peek().tok {
                Tok::Star => BinOp::Mul,
                Tok::Slash => BinOp::Div,
                _ => return Ok(l),
            };
            self.bump();
            let r = self.unary()?;
            l = binary(op, l, r);
        }
    }

    fn unary(&mut self) -> Result<Expr, Located> {
        if self.peek().tok != Tok::Minus {
            return self.primary();
        }
        let start = self.bump().span;
        self.enter()?;
        let inner = self.unary()?;
        self.depth -= 1;
        Ok(Expr {
            span: start.to(inner.span),
            kind: ExprKind::Neg(Box::new(inner)),
        })
    }

    fn primary(&mut self) -> Result<Expr, Located> {
        let t = self.bump();
        let leaf = |kind| Ok(Expr { kind, span: t.span });
        match &t.tok {
            Tok::Num(n) => leaf(ExprKind::Num(*n)),
            Tok::Str(s) => leaf(ExprKind::Str(s.clone())),
            Tok::True => leaf(ExprKind::Bool(true)),
            Tok::False => leaf(ExprKind::Bool(false)),
            Tok::Ident(name) if self.peek().tok == Tok::LParen => self.call(name, t.span),
            Tok::Ident(name) => leaf(ExprKind::Ident(name.clone())),
            Tok::LParen => {
                self.enter()?;
                let inner = self.or()?;
                self.depth -= 1;
                let end = self.expect(Tok::RParen, "')'")?;
                Ok(Expr {
                    kind: inner.kind,
                    span: t.span.to(end),
                })
            }
            Tok::LBracket => self.list(t.span),
            other => Err(Located::new(
                t.span,
                format!(
                    "expected a value, a name or '(', found {}",
                    other.describe()
                ),
            )),
        }
    }

    fn call(&mut self, name: &str, name_span: Span) -> Result<Expr, Located> {
        self.bump(); // '('
        self.enter()?;
        let mut args = Vec::new();
        if self.peek().tok != Tok::RParen {
            loop {
                args.push(self.or()?);
                if self.peek().tok != Tok::Comma {
                    break;
                }
                self.bump();
            }
        }
        self.depth -= 1;
        let end = self.expect(Tok::RParen, "',' or ')' after an argument")?;
        Ok(Expr {
            kind: ExprKind::Call {
                name: name.to_string(),
                name_span,
                args,
            },
            span: name_span.to(end),
        })
    }

    fn list(&mut self, open: Span) -> Result<Expr, Located> {
        self.enter()?;
        let mut items = Vec::new();
        if self.peek().tok != Tok::RBracket {
            loop {
                items.push(self.primary()?);
                if self.peek().tok != Tok::Comma {
                    break;
                }
                self.bump();
            }
        }
        self.depth -= 1;
        let end = self.expect(Tok::RBracket, "',' or ']' in the list")?;
        Ok(Expr {
            kind: ExprKind::List(items),
            span: open.to(end),
        })
    }
}
