//! Feature expressions over branches, as physicists write them in feature lists:
//! `log(pt)`, `sqrt(px*px + py*py)`, `abs(eta) < 2.4`, `Jet_pt[0]`, `max(a, b)`, `E1 / 1000`.
//! Parsed once, evaluated over a chunk of events column-wise in f64.

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum ExprError {
    #[error("expression '{expr}': {msg} at column {col}")]
    Parse {
        expr: String,
        msg: String,
        col: usize,
    },
    #[error("expression '{expr}': unknown function '{name}' (known: {known})")]
    UnknownFunction {
        expr: String,
        name: String,
        known: String,
    },
    #[error("expression '{expr}': {name}() takes {want} argument(s), got {got}")]
    Arity {
        expr: String,
        name: String,
        want: usize,
        got: usize,
    },
}

/// Fills a variable's values for the events being evaluated: (name, index, out).
pub type VarFn<'a, E> = dyn FnMut(&str, Option<usize>, &mut [f64]) -> Result<(), E> + 'a;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Num(f64),
    /// A branch value; `index` selects an element of an array branch (`Jet_pt[0]`).
    Var {
        name: String,
        index: Option<usize>,
    },
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Bin(Op, Box<Expr>, Box<Expr>),
    Call(Func, Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Or,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Func {
    Log,
    Log10,
    Exp,
    Sqrt,
    Abs,
    Sin,
    Cos,
    Tan,
    Atan,
    Atan2,
    Sinh,
    Cosh,
    Tanh,
    Pow,
    Min,
    Max,
    Floor,
    Ceil,
}

const FUNCS: &[(&str, Func, usize)] = &[
    ("log", Func::Log, 1),
    ("log10", Func::Log10, 1),
    ("exp", Func::Exp, 1),
    ("sqrt", Func::Sqrt, 1),
    ("abs", Func::Abs, 1),
    ("sin", Func::Sin, 1),
    ("cos", Func::Cos, 1),
    ("tan", Func::Tan, 1),
    ("atan", Func::Atan, 1),
    ("atan2", Func::Atan2, 2),
    ("sinh", Func::Sinh, 1),
    ("cosh", Func::Cosh, 1),
    ("tanh", Func::Tanh, 1),
    ("pow", Func::Pow, 2),
    ("min", Func::Min, 2),
    ("max", Func::Max, 2),
    ("floor", Func::Floor, 1),
    ("ceil", Func::Ceil, 1),
];

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Num(x) => write!(f, "{x}"),
            Expr::Var { name, index: None } => write!(f, "{name}"),
            Expr::Var {
                name,
                index: Some(i),
            } => write!(f, "{name}[{i}]"),
            Expr::Neg(e) => write!(f, "-({e})"),
            Expr::Not(e) => write!(f, "!({e})"),
            Expr::Bin(op, a, b) => write!(f, "({a} {op:?} {b})"),
            Expr::Call(func, args) => {
                let name = FUNCS
                    .iter()
                    .find(|(_, g, _)| g == func)
                    .map(|(n, _, _)| *n)
                    .unwrap_or("?");
                write!(f, "{name}(")?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{a}")?;
                }
                write!(f, ")")
            }
        }
    }
}

struct Parser<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, msg: impl Into<String>) -> ExprError {
        ExprError::Parse {
            expr: self.src.to_string(),
            msg: msg.into(),
            col: self.pos + 1,
        }
    }
    fn ws(&mut self) {
        while self.pos < self.b.len() && self.b[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }
    fn eat(&mut self, s: &str) -> bool {
        self.ws();
        if self.src[self.pos..].starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }
    fn or(&mut self) -> Result<Expr, ExprError> {
        let mut a = self.and()?;
        while self.eat("||") {
            a = Expr::Bin(Op::Or, Box::new(a), Box::new(self.and()?));
        }
        Ok(a)
    }
    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut a = self.cmp()?;
        while self.eat("&&") {
            a = Expr::Bin(Op::And, Box::new(a), Box::new(self.cmp()?));
        }
        Ok(a)
    }
    fn cmp(&mut self) -> Result<Expr, ExprError> {
        let a = self.sum()?;
        for (s, op) in [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<", Op::Lt),
            (">", Op::Gt),
        ] {
            if self.eat(s) {
                return Ok(Expr::Bin(op, Box::new(a), Box::new(self.sum()?)));
            }
        }
        Ok(a)
    }
    fn sum(&mut self) -> Result<Expr, ExprError> {
        let mut a = self.prod()?;
        loop {
            if self.eat("+") {
                a = Expr::Bin(Op::Add, Box::new(a), Box::new(self.prod()?));
            } else if self.eat("-") {
                a = Expr::Bin(Op::Sub, Box::new(a), Box::new(self.prod()?));
            } else {
                return Ok(a);
            }
        }
    }
    fn prod(&mut self) -> Result<Expr, ExprError> {
        let mut a = self.unary()?;
        loop {
            self.ws();
            if self.src[self.pos..].starts_with("**") {
                return Ok(a);
            }
            if self.eat("*") {
                a = Expr::Bin(Op::Mul, Box::new(a), Box::new(self.unary()?));
            } else if self.eat("/") {
                a = Expr::Bin(Op::Div, Box::new(a), Box::new(self.unary()?));
            } else {
                return Ok(a);
            }
        }
    }
    fn unary(&mut self) -> Result<Expr, ExprError> {
        if self.eat("-") {
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        if self.eat("+") {
            return self.unary();
        }
        if self.eat("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        let base = self.atom()?;
        if self.eat("**") || self.eat("^") {
            return Ok(Expr::Bin(Op::Pow, Box::new(base), Box::new(self.unary()?)));
        }
        Ok(base)
    }
    fn atom(&mut self) -> Result<Expr, ExprError> {
        self.ws();
        let start = self.pos;
        let Some(&c) = self.b.get(self.pos) else {
            return Err(self.err("unexpected end"));
        };
        if c == b'(' {
            self.pos += 1;
            let e = self.or()?;
            if !self.eat(")") {
                return Err(self.err("expected ')'"));
            }
            return Ok(e);
        }
        if c.is_ascii_digit() || c == b'.' {
            while self.pos < self.b.len()
                && (self.b[self.pos].is_ascii_alphanumeric()
                    || self.b[self.pos] == b'.'
                    || ((self.b[self.pos] == b'-' || self.b[self.pos] == b'+')
                        && matches!(self.b[self.pos - 1], b'e' | b'E')))
            {
                self.pos += 1;
            }
            let t = &self.src[start..self.pos];
            return t.parse::<f64>().map(Expr::Num).map_err(|_| {
                self.pos = start;
                self.err(format!("bad number '{t}'"))
            });
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            while self.pos < self.b.len()
                && (self.b[self.pos].is_ascii_alphanumeric()
                    || self.b[self.pos] == b'_'
                    || self.b[self.pos] == b'.')
            {
                self.pos += 1;
            }
            let name = &self.src[start..self.pos];
            if self.eat("(") {
                let mut args = Vec::new();
                if !self.eat(")") {
                    loop {
                        args.push(self.or()?);
                        if self.eat(")") {
                            break;
                        }
                        if !self.eat(",") {
                            return Err(self.err("expected ',' or ')'"));
                        }
                    }
                }
                let Some(&(_, func, arity)) = FUNCS.iter().find(|(n, _, _)| *n == name) else {
                    return Err(ExprError::UnknownFunction {
                        expr: self.src.into(),
                        name: name.into(),
                        known: FUNCS.iter().map(|f| f.0).collect::<Vec<_>>().join(", "),
                    });
                };
                if args.len() != arity {
                    return Err(ExprError::Arity {
                        expr: self.src.into(),
                        name: name.into(),
                        want: arity,
                        got: args.len(),
                    });
                }
                return Ok(Expr::Call(func, args));
            }
            let index = if self.eat("[") {
                self.ws();
                let s = self.pos;
                while self.pos < self.b.len() && self.b[self.pos].is_ascii_digit() {
                    self.pos += 1;
                }
                let i = self.src[s..self.pos]
                    .parse::<usize>()
                    .map_err(|_| self.err("expected an index"))?;
                if !self.eat("]") {
                    return Err(self.err("expected ']'"));
                }
                Some(i)
            } else {
                None
            };
            return Ok(match (name, index) {
                ("pi", None) => Expr::Num(std::f64::consts::PI),
                ("true", None) => Expr::Num(1.0),
                ("false", None) => Expr::Num(0.0),
                _ => Expr::Var {
                    name: name.to_string(),
                    index,
                },
            });
        }
        Err(self.err(format!("unexpected '{}'", c as char)))
    }
}

impl Expr {
    pub fn parse(src: &str) -> Result<Expr, ExprError> {
        let mut p = Parser {
            src,
            b: src.as_bytes(),
            pos: 0,
        };
        let e = p.or()?;
        p.ws();
        if p.pos != src.len() {
            return Err(p.err("unexpected trailing text"));
        }
        Ok(e)
    }

    /// The branches this expression reads (with their indexing), in first-use order.
    pub fn vars(&self) -> Vec<(String, Option<usize>)> {
        let mut out = Vec::new();
        fn walk(e: &Expr, out: &mut Vec<(String, Option<usize>)>) {
            match e {
                Expr::Var { name, index } => {
                    if !out.iter().any(|(n, i)| n == name && i == index) {
                        out.push((name.clone(), *index));
                    }
                }
                Expr::Num(_) => {}
                Expr::Neg(a) | Expr::Not(a) => walk(a, out),
                Expr::Bin(_, a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                Expr::Call(_, args) => args.iter().for_each(|a| walk(a, out)),
            }
        }
        walk(self, &mut out);
        out
    }

    /// Is this a plain branch name (no computation)?
    pub fn as_branch(&self) -> Option<&str> {
        match self {
            Expr::Var { name, index: None } => Some(name),
            _ => None,
        }
    }

    /// Evaluates over `n` events; `var(name, index, out)` fills `out` (length n) with a
    /// variable's values.
    pub fn eval<E>(&self, n: usize, var: &mut VarFn<'_, E>) -> Result<Vec<f64>, E> {
        Ok(match self {
            Expr::Num(x) => vec![*x; n],
            Expr::Var { name, index } => {
                let mut v = vec![0.0; n];
                var(name, *index, &mut v)?;
                v
            }
            Expr::Neg(a) => {
                let mut v = a.eval(n, var)?;
                v.iter_mut().for_each(|x| *x = -*x);
                v
            }
            Expr::Not(a) => {
                let mut v = a.eval(n, var)?;
                v.iter_mut().for_each(|x| *x = (*x == 0.0) as u8 as f64);
                v
            }
            Expr::Bin(op, a, b) => {
                let mut x = a.eval(n, var)?;
                let y = b.eval(n, var)?;
                let f: fn(f64, f64) -> f64 = match op {
                    Op::Add => |a, b| a + b,
                    Op::Sub => |a, b| a - b,
                    Op::Mul => |a, b| a * b,
                    Op::Div => |a, b| a / b,
                    Op::Pow => f64::powf,
                    Op::Lt => |a, b| (a < b) as u8 as f64,
                    Op::Le => |a, b| (a <= b) as u8 as f64,
                    Op::Gt => |a, b| (a > b) as u8 as f64,
                    Op::Ge => |a, b| (a >= b) as u8 as f64,
                    Op::Eq => |a, b| (a == b) as u8 as f64,
                    Op::Ne => |a, b| (a != b) as u8 as f64,
                    Op::And => |a, b| (a != 0.0 && b != 0.0) as u8 as f64,
                    Op::Or => |a, b| (a != 0.0 || b != 0.0) as u8 as f64,
                };
                x.iter_mut().zip(&y).for_each(|(a, b)| *a = f(*a, *b));
                x
            }
            Expr::Call(func, args) => {
                let mut x = args[0].eval(n, var)?;
                if args.len() == 2 {
                    let y = args[1].eval(n, var)?;
                    let f: fn(f64, f64) -> f64 = match func {
                        Func::Atan2 => f64::atan2,
                        Func::Pow => f64::powf,
                        Func::Min => f64::min,
                        _ => f64::max,
                    };
                    x.iter_mut().zip(&y).for_each(|(a, b)| *a = f(*a, *b));
                } else {
                    let f: fn(f64) -> f64 = match func {
                        Func::Log => f64::ln,
                        Func::Log10 => f64::log10,
                        Func::Exp => f64::exp,
                        Func::Sqrt => f64::sqrt,
                        Func::Abs => f64::abs,
                        Func::Sin => f64::sin,
                        Func::Cos => f64::cos,
                        Func::Tan => f64::tan,
                        Func::Atan => f64::atan,
                        Func::Sinh => f64::sinh,
                        Func::Cosh => f64::cosh,
                        Func::Tanh => f64::tanh,
                        Func::Floor => f64::floor,
                        _ => f64::ceil,
                    };
                    x.iter_mut().for_each(|a| *a = f(*a));
                }
                x
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(src: &str, vars: &[(&str, &[f64])]) -> Vec<f64> {
        let e = Expr::parse(src).unwrap();
        let n = vars.first().map(|v| v.1.len()).unwrap_or(1);
        e.eval::<String>(n, &mut |name, idx, out| {
            let v = vars
                .iter()
                .find(|v| v.0 == name)
                .ok_or(format!("no {name}"))?;
            assert!(idx.is_none());
            out.copy_from_slice(v.1);
            Ok(())
        })
        .unwrap()
    }

    #[test]
    fn arithmetic_functions_and_precedence() {
        let px: &[f64] = &[3.0, -6.0];
        let py: &[f64] = &[4.0, 8.0];
        assert_eq!(
            ev("sqrt(px*px + py*py)", &[("px", px), ("py", py)]),
            vec![5.0, 10.0]
        );
        assert_eq!(ev("1 + 2 * 3 - 4 / 2", &[]), vec![5.0]);
        assert_eq!(ev("-2 ** 2", &[]), vec![-4.0]);
        assert_eq!(ev("2 ** 3 ** 2", &[]), vec![512.0]);
        assert_eq!(
            ev("abs(px) > 4 && py < 9", &[("px", px), ("py", py)]),
            vec![0.0, 1.0]
        );
        assert_eq!(ev("log(exp(1.5e0))", &[]), vec![1.5]);
        assert_eq!(
            ev("max(px, py) / 1e3", &[("px", px), ("py", py)]),
            vec![0.004, 0.008]
        );
        assert_eq!(ev("atan2(0, -1) == pi", &[]), vec![1.0]);
    }

    #[test]
    fn variables_and_indexing() {
        let e = Expr::parse("Jet_pt[0] / (Jet_pt[1] + met.pt) + Jet_pt[0]").unwrap();
        assert_eq!(
            e.vars(),
            vec![
                ("Jet_pt".into(), Some(0)),
                ("Jet_pt".into(), Some(1)),
                ("met.pt".into(), None)
            ]
        );
        assert_eq!(Expr::parse(" pt ").unwrap().as_branch(), Some("pt"));
        assert_eq!(Expr::parse("log(pt)").unwrap().as_branch(), None);
    }

    #[test]
    fn errors_name_the_problem() {
        for (src, want) in [
            ("log(pt", "expected ',' or ')'"),
            ("(pt + 1", "expected ')'"),
            ("foo(pt)", "unknown function 'foo'"),
            ("pow(pt)", "takes 2 argument(s), got 1"),
            ("pt +", "unexpected end"),
            ("pt pt", "trailing"),
            ("x[a]", "expected an index"),
        ] {
            let e = Expr::parse(src).unwrap_err().to_string();
            assert!(e.contains(want), "{src}: {e}");
        }
    }
}
