//! [`declared_outputs`]: the `output "name" { ... }` blocks of a Terraform module's `.tf` files, found by a
//! small HCL scanner (comments, strings with `${...}` templates, heredocs and braces), so that a test can
//! hold the module to the harness's output contract without Terraform or its providers.

use std::path::{Path, PathBuf};

/// An `output` block of a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputDecl {
    /// Output name.
    pub name: String,
    /// File that declares it.
    pub file: PathBuf,
    /// 1-based line of the `output` keyword.
    pub line: usize,
    /// Whether the block sets `sensitive = true`.
    pub sensitive: bool,
    /// Whether the block has a `value` attribute.
    pub has_value: bool,
}

/// A module that could not be scanned.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Unbalanced braces, an unterminated string, comment or heredoc.
    #[error("{path}:{line}: {problem}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        problem: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Open,
    Close,
    Assign,
    Other,
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
    line: usize,
    path: &'a Path,
}

impl<'a> Lexer<'a> {
    fn err(&self, line: usize, problem: &str) -> Error {
        Error::Syntax { path: self.path.to_path_buf(), line, problem: problem.into() }
    }

    fn peek(&self, k: usize) -> Option<u8> {
        self.s.get(self.i + k).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek(0)?;
        self.i += 1;
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.peek(0) {
            if c == b'\n' {
                break;
            }
            self.i += 1;
        }
    }

    fn block_comment(&mut self) -> Result<(), Error> {
        let start = self.line;
        self.i += 2;
        loop {
            match self.bump() {
                None => return Err(self.err(start, "unterminated /* comment")),
                Some(b'*') if self.peek(0) == Some(b'/') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(_) => {}
            }
        }
    }

    /// A quoted string; the opening quote is consumed already. Templates (`${ }`, `%{ }`) may hold nested
    /// strings and braces.
    fn string(&mut self) -> Result<String, Error> {
        let start = self.line;
        let mut out = Vec::new();
        loop {
            match self.bump() {
                None | Some(b'\n') => return Err(self.err(start, "unterminated string")),
                Some(b'\\') => {
                    if let Some(c) = self.bump() {
                        out.push(c);
                    }
                }
                Some(b'"') => return Ok(String::from_utf8_lossy(&out).into_owned()),
                Some(c @ (b'$' | b'%')) if self.peek(0) == Some(b'{') => {
                    self.i += 1;
                    out.extend_from_slice(&[c, b'{']);
                    self.template()?;
                    out.push(b'}');
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn template(&mut self) -> Result<(), Error> {
        let start = self.line;
        let mut depth = 1;
        while depth > 0 {
            match self.bump() {
                None => return Err(self.err(start, "unterminated ${ template")),
                Some(b'"') => {
                    self.string()?;
                }
                Some(b'{') => depth += 1,
                Some(b'}') => depth -= 1,
                Some(_) => {}
            }
        }
        Ok(())
    }

    fn heredoc(&mut self) -> Result<(), Error> {
        let start = self.line;
        self.i += 2;
        if self.peek(0) == Some(b'-') {
            self.i += 1;
        }
        let tag_start = self.i;
        while self.peek(0).is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_') {
            self.i += 1;
        }
        let tag = String::from_utf8_lossy(&self.s[tag_start..self.i]).into_owned();
        if tag.is_empty() {
            return Err(self.err(start, "heredoc without a tag"));
        }
        self.skip_line();
        loop {
            if self.bump().is_none() {
                return Err(self.err(start, &format!("unterminated heredoc <<{tag}")));
            }
            let line_start = self.i;
            self.skip_line();
            if String::from_utf8_lossy(&self.s[line_start..self.i]).trim() == tag {
                return Ok(());
            }
        }
    }

    fn next(&mut self) -> Result<Option<(Tok, usize)>, Error> {
        loop {
            let Some(c) = self.peek(0) else { return Ok(None) };
            let line = self.line;
            match c {
                b'#' => self.skip_line(),
                b'/' if self.peek(1) == Some(b'/') => self.skip_line(),
                b'/' if self.peek(1) == Some(b'*') => self.block_comment()?,
                b'<' if self.peek(1) == Some(b'<')
                    && self.peek(2).is_some_and(|c| c == b'-' || c.is_ascii_alphabetic()) =>
                {
                    self.heredoc()?;
                    return Ok(Some((Tok::Other, line)));
                }
                b'"' => {
                    self.i += 1;
                    return Ok(Some((Tok::Str(self.string()?), line)));
                }
                b'{' => {
                    self.i += 1;
                    return Ok(Some((Tok::Open, line)));
                }
                b'}' => {
                    self.i += 1;
                    return Ok(Some((Tok::Close, line)));
                }
                b'=' if !matches!(self.peek(1), Some(b'=' | b'>')) => {
                    self.i += 1;
                    return Ok(Some((Tok::Assign, line)));
                }
                c if c.is_ascii_alphabetic() || c == b'_' => {
                    let start = self.i;
                    while self.peek(0).is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-') {
                        self.i += 1;
                    }
                    return Ok(Some((Tok::Ident(String::from_utf8_lossy(&self.s[start..self.i]).into_owned()), line)));
                }
                c if c.is_ascii_whitespace() => {
                    self.bump();
                }
                _ => {
                    self.bump();
                    return Ok(Some((Tok::Other, line)));
                }
            }
        }
    }
}

/// The `output` blocks of one `.tf` file's text.
pub fn outputs_in(text: &str, path: &Path) -> Result<Vec<OutputDecl>, Error> {
    let mut lx = Lexer { s: text.as_bytes(), i: 0, line: 1, path };
    let mut toks = Vec::new();
    while let Some(t) = lx.next()? {
        toks.push(t);
    }
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut open_lines = Vec::new();
    let mut current: Option<OutputDecl> = None;
    let mut i = 0;
    while i < toks.len() {
        let (tok, line) = &toks[i];
        match tok {
            Tok::Ident(k) if depth == 0 && k == "output" => {
                if let (Some((Tok::Str(name), _)), Some((Tok::Open, _))) = (toks.get(i + 1), toks.get(i + 2)) {
                    current = Some(OutputDecl {
                        name: name.clone(),
                        file: path.into(),
                        line: *line,
                        sensitive: false,
                        has_value: false,
                    });
                    depth = 1;
                    open_lines.push(*line);
                    i += 3;
                    continue;
                }
                return Err(lx.err(*line, "`output` must be followed by a quoted name and `{`"));
            }
            Tok::Ident(k) if depth == 1 && matches!(toks.get(i + 1), Some((Tok::Assign, _))) => {
                if let Some(o) = current.as_mut() {
                    match k.as_str() {
                        "value" => o.has_value = true,
                        "sensitive" => o.sensitive = matches!(toks.get(i + 2), Some((Tok::Ident(v), _)) if v == "true"),
                        _ => {}
                    }
                }
            }
            Tok::Open => {
                depth += 1;
                open_lines.push(*line);
            }
            Tok::Close => {
                if depth == 0 {
                    return Err(lx.err(*line, "`}` without a matching `{`"));
                }
                depth -= 1;
                open_lines.pop();
                if depth == 0 {
                    out.extend(current.take());
                }
            }
            _ => {}
        }
        i += 1;
    }
    if let Some(line) = open_lines.first() {
        return Err(lx.err(*line, "`{` is never closed"));
    }
    Ok(out)
}

/// The `output` blocks of every `.tf` file in the module directory `dir` (not its subdirectories), sorted by
/// file and line.
pub fn declared_outputs(dir: &Path) -> Result<Vec<OutputDecl>, Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tf") && p.is_file())
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(io(&f))?;
        out.extend(outputs_in(&text, &f)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str) -> Result<Vec<OutputDecl>, Error> {
        outputs_in(text, Path::new("t.tf"))
    }

    #[test]
    fn finds_outputs_and_their_attributes() {
        let text = r#"
# output "commented" { value = 1 }
// output "also_commented" {}
/* output "block_commented" {
} */
resource "x" "y" {
  output "nested_is_not_top_level" { value = 1 }
  tags = { a = "}" }
}
output "plain" {
  value = "${var.a}-{literal}-${jsonencode({ b = "}" })}"
}
output "secret" {
  description = <<-EOT
    a heredoc with } and output "fake" {
  EOT
  value     = var.k
  sensitive = true
}
output "cond" { value = var.a == "x" ? 1 : 2 }
"#;
        let outs = scan(text).unwrap();
        let names: Vec<_> = outs.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["plain", "secret", "cond"]);
        assert_eq!((outs[0].line, outs[0].sensitive, outs[0].has_value), (10, false, true));
        assert!(outs[1].sensitive && outs[1].has_value);
    }

    #[test]
    fn unbalanced_and_unterminated_input_is_located() {
        let e = scan("output \"a\" {\n  value = 1\n").unwrap_err();
        assert!(e.to_string().starts_with("t.tf:1: `{` is never closed"), "{e}");
        let e = scan("output \"a\" { value = 1 }\n}\n").unwrap_err();
        assert!(e.to_string().starts_with("t.tf:2: `}` without"), "{e}");
        let e = scan("output \"a\" {\n value = \"abc\n}").unwrap_err();
        assert!(e.to_string().contains("t.tf:2: unterminated string"), "{e}");
        let e = scan("output a {}").unwrap_err();
        assert!(e.to_string().contains("quoted name"), "{e}");
        let e = scan("x = <<EOT\nnever ends\n").unwrap_err();
        assert!(e.to_string().contains("unterminated heredoc <<EOT"), "{e}");
    }
}
