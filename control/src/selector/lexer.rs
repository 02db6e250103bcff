//! Tokens of the label selector string syntax.
//!
//! Identifiers run until whitespace or one of `= ! ( ) , > <`; runs of those
//! symbols are cut into the longest known operator (`!=`, `==`, ...).

/// One token kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tok {
    /// A symbol run that is no operator.
    Error,
    End,
    OpenPar,
    ClosePar,
    Comma,
    /// `!` (does-not-exist prefix)
    Bang,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
    In,
    NotIn,
    Ident,
}

fn is_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_symbol(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn symbol_token(s: &str) -> Option<Tok> {
    Some(match s {
        "(" => Tok::OpenPar,
        ")" => Tok::ClosePar,
        "," => Tok::Comma,
        "!" => Tok::Bang,
        "=" => Tok::Eq,
        "==" => Tok::DoubleEq,
        "!=" => Tok::NotEq,
        ">" => Tok::Gt,
        "<" => Tok::Lt,
        _ => return None,
    })
}

/// Splits `input` into tokens; the last one is always [`Tok::End`] with an
/// empty literal.
pub(super) fn tokenize(input: &str) -> Vec<(Tok, String)> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while chars.get(i).copied().is_some_and(is_whitespace) {
            i += 1;
        }
        let Some(&c) = chars.get(i) else {
            out.push((Tok::End, String::new()));
            return out;
        };
        if is_symbol(c) {
            let mut buffer = String::new();
            let mut best: Option<(Tok, String)> = None;
            while let Some(&c) = chars.get(i).filter(|c| is_symbol(**c)) {
                buffer.push(c);
                if let Some(tok) = symbol_token(&buffer) {
                    best = Some((tok, buffer.clone()));
                } else if best.is_some() {
                    break;
                }
                i += 1;
            }
            out.push(best.unwrap_or_else(|| (Tok::Error, format!("error expected: keyword found '{buffer}'"))));
        } else {
            let start = i;
            while chars.get(i).copied().is_some_and(|c| !is_whitespace(c) && !is_symbol(c)) {
                i += 1;
            }
            let word: String = chars.get(start..i).unwrap_or_default().iter().collect();
            let tok = match word.as_str() {
                "in" => Tok::In,
                "notin" => Tok::NotIn,
                _ => Tok::Ident,
            };
            out.push((tok, word));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Tok> {
        tokenize(s).into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn splits_operators_and_identifiers() {
        use Tok::*;
        assert_eq!(kinds(""), vec![End]);
        assert_eq!(kinds("a==b"), vec![Ident, DoubleEq, Ident, End]);
        assert_eq!(kinds(" a != b "), vec![Ident, NotEq, Ident, End]);
        assert_eq!(kinds("!a,b in (x,y)"), vec![Bang, Ident, Comma, Ident, In, OpenPar, Ident, Comma, Ident, ClosePar, End]);
        assert_eq!(kinds("a notin(x)"), vec![Ident, NotIn, OpenPar, Ident, ClosePar, End]);
        assert_eq!(kinds("a=(b"), vec![Ident, Eq, OpenPar, Ident, End]);
        assert_eq!(kinds("a>1,b<2"), vec![Ident, Gt, Ident, Comma, Ident, Lt, Ident, End]);
        assert_eq!(kinds("a=!b"), vec![Ident, Eq, Bang, Ident, End]);
        let toks = tokenize("ключ=значение");
        assert_eq!(toks[0].1, "ключ");
        assert_eq!(toks[2].1, "значение");
    }
}
