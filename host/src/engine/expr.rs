//! jq expressions (through the `jaq` crates): compiled once when a definition is applied,
//! evaluated against a run's context many times.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, ValT, Vars, data, unwrap_valr};
use jaq_json::Num;
pub use jaq_json::Val;
use serde::Deserialize;
use std::fmt;

type Filter = jaq_core::Filter<data::JustLut<Val>>;

/// A compiled jq expression.
pub struct Expr {
    source: String,
    filter: Filter,
    /// Set if the expression is a plain path (`.input.url`), as most step inputs are:
    /// walked directly, without starting jq's interpreter.
    path: Option<PlainPath>,
}

/// The names of a plain path (`.input.url`: `input`, `url`).
struct PlainPath {
    names: Vec<String>,
    /// The same names as jq strings, to look up in jq objects.
    keys: Vec<Val>,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Expr({:?})", self.source)
    }
}

impl Expr {
    /// Parses and compiles `source`. The error says what is wrong and at which column.
    pub fn compile(source: &str) -> Result<Expr, String> {
        let loader = Loader::new(
            jaq_core::defs()
                .chain(jaq_std::defs())
                .chain(jaq_json::defs()),
        );
        let arena = Arena::default();
        let modules = loader
            .load(
                &arena,
                File {
                    code: source,
                    path: (),
                },
            )
            .map_err(|errors| {
                let mut problems = Vec::new();
                for (_, error) in errors {
                    match error {
                        jaq_core::load::Error::Io(e) => {
                            problems.extend(e.into_iter().map(|(_, m)| m));
                        }
                        jaq_core::load::Error::Lex(e) => problems.extend(
                            e.into_iter()
                                .map(|(expected, at)| located(source, expected.as_str(), at)),
                        ),
                        jaq_core::load::Error::Parse(e) => problems.extend(
                            e.into_iter()
                                .map(|(expected, at)| located(source, expected.as_str(), at)),
                        ),
                    }
                }
                problems.join("; ")
            })?;
        let filter = Compiler::default()
            .with_funs(
                jaq_core::funs::<data::JustLut<Val>>()
                    .chain(jaq_std::funs())
                    .chain(jaq_json::funs()),
            )
            .compile(modules)
            .map_err(|errors| {
                let mut problems = Vec::new();
                for (_, undefined) in errors {
                    for (name, what) in undefined {
                        let what = match what {
                            jaq_core::compile::Undefined::Var => "variable",
                            jaq_core::compile::Undefined::Label => "label",
                            jaq_core::compile::Undefined::Mod => "module",
                            _ => "function",
                        };
                        problems.push(format!(
                            "unknown {what} `{name}` at column {}",
                            column(source, name)
                        ));
                    }
                }
                problems.join("; ")
            })?;
        Ok(Expr {
            source: source.to_owned(),
            filter,
            path: plain_path(source).map(|names| PlainPath {
                keys: names.iter().map(|name| string(name)).collect(),
                names,
            }),
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The expression's first output for `input`. No output, or a jq error, is an error.
    pub fn eval(&self, input: &Val) -> Result<Val, String> {
        if let Some(value) = self.path.as_ref().and_then(|p| walk(input, &p.keys)) {
            return Ok(value);
        }
        let ctx = Ctx::<data::JustLut<Val>>::new(&self.filter.lut, Vars::new([]));
        match self
            .filter
            .id
            .run((ctx, input.clone()))
            .map(unwrap_valr)
            .next()
        {
            Some(Ok(value)) => Ok(value),
            Some(Err(e)) => Err(format!("`{}` failed: {e}", self.source)),
            None => Err(format!("`{}` produced no value", self.source)),
        }
    }

    /// Evaluates a condition: jq truthiness (everything but `false` and `null` is true).
    pub fn test(&self, input: &Val) -> Result<bool, String> {
        self.eval(input).map(|v| v.as_bool())
    }
}

/// The names of `source` if it is a path of plain names (`.a.b_c`).
fn plain_path(source: &str) -> Option<Vec<String>> {
    let names = source.strip_prefix('.')?.split('.');
    names
        .map(|name| {
            let mut chars = name.chars();
            let plain = chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            plain.then(|| name.to_owned())
        })
        .collect()
}

/// What jq gives for the path `keys` of `value`, where that is certain without jq:
/// through objects and nulls. Anything else (indexing a number, say) is left to jq,
/// which says what went wrong.
fn walk(value: &Val, keys: &[Val]) -> Option<Val> {
    let mut value = value;
    for key in keys {
        value = match value {
            Val::Obj(map) => map.get(key).unwrap_or(&Val::Null),
            Val::Null => return Some(Val::Null),
            _ => return None,
        };
    }
    Some(value.clone())
}

/// [`walk`] for JSON: what jq gives for the path `names` of `value`, where that is
/// certain without jq.
pub fn walk_json(value: &serde_json::Value, names: &[String]) -> Option<serde_json::Value> {
    let mut value = value;
    for name in names {
        value = match value {
            serde_json::Value::Object(map) => map.get(name).unwrap_or(&serde_json::Value::Null),
            serde_json::Value::Null => return Some(serde_json::Value::Null),
            _ => return None,
        };
    }
    Some(value.clone())
}

/// Where in `source` the lexer or parser stopped, as a 1-based column.
fn column(source: &str, at: &str) -> usize {
    let offset = (at.as_ptr() as usize).saturating_sub(source.as_ptr() as usize);
    source
        .get(..offset.min(source.len()))
        .map_or(1, |s| s.chars().count() + 1)
}

fn located(source: &str, expected: &str, at: &str) -> String {
    let found = if at.is_empty() {
        "the end".to_owned()
    } else {
        format!("`{}`", at.chars().take(12).collect::<String>())
    };
    format!(
        "expected {expected} at column {} (found {found})",
        column(source, at)
    )
}

/// A JSON value as a jq value.
pub fn to_val(value: &serde_json::Value) -> Val {
    Val::deserialize(value).expect("every JSON value is a jq value")
}

/// A jq value as JSON. jq values that JSON cannot hold (byte strings, non-string object
/// keys, NaN) are refused.
pub fn to_json(value: &Val) -> Result<serde_json::Value, String> {
    use serde_json::Value;
    let refused = || format!("the value {value} cannot be written as JSON");
    Ok(match value {
        Val::Null => Value::Null,
        Val::Bool(b) => Value::Bool(*b),
        Val::Num(Num::Int(i)) => Value::from(*i as i64),
        Val::Num(Num::Float(f)) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .ok_or_else(refused)?,
        // Big integers and decimals as written: JSON's own reading decides what they are.
        Val::Num(number) => serde_json::from_str(&number.to_string()).map_err(|_| refused())?,
        Val::TStr(text) => Value::String(String::from_utf8_lossy(text).into_owned()),
        Val::BStr(_) => return Err(refused()),
        Val::Arr(items) => Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Val::Obj(entries) => Value::Object(
            entries
                .iter()
                .map(|(key, value)| match key {
                    Val::TStr(key) => {
                        Ok((String::from_utf8_lossy(key).into_owned(), to_json(value)?))
                    }
                    _ => Err(refused()),
                })
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// A jq string value.
pub fn string(s: &str) -> Val {
    Val::from(s.to_owned())
}

/// A jq object from `(key, value)` pairs.
pub fn object(entries: impl IntoIterator<Item = (Val, Val)>) -> Val {
    Val::from_map(entries).expect("object keys are valid jq values")
}

/// The value under `key` of a jq object (null if absent or not an object).
pub fn field(value: &Val, key: &str) -> Val {
    match value {
        Val::Obj(map) => map.get(&string(key)).cloned().unwrap_or(Val::Null),
        _ => Val::Null,
    }
}

/// `object` with `key` set to `value` (copy-on-write: other holders are unaffected).
pub fn with_field(object: &Val, key: &str, value: Val) -> Val {
    let mut map = match object {
        Val::Obj(map) => (**map).clone(),
        _ => Default::default(),
    };
    map.insert(string(key), value);
    Val::obj(map)
}

/// Sets `object.key` to `value` in place (copying the map only if another holder
/// shares it); a non-object becomes an object.
pub fn set_field(object: &mut Val, key: &str, value: Val) {
    match object {
        Val::Obj(map) => {
            jaq_json::Rc::make_mut(map).insert(string(key), value);
        }
        other => *other = self::object([(string(key), value)]),
    }
}

/// Sets `object.outer.key` to `value` in place.
pub fn set_nested_field(object: &mut Val, outer: &str, key: &str, value: Val) {
    if let Val::Obj(map) = object {
        let inner = jaq_json::Rc::make_mut(map)
            .entry(string(outer))
            .or_insert(Val::Null);
        set_field(inner, key, value);
    }
}

/// A template: a JSON value whose string leaves are jq expressions. Numbers, booleans
/// and null are taken literally; a literal string is written as a jq string (`'"text"'`).
#[derive(Debug)]
pub enum Template {
    Expr(Expr),
    Literal(Val),
    Array(Vec<Template>),
    Object(Vec<(String, Template)>),
}

impl Template {
    /// Compiles every string leaf of `value`. An error names the leaf's path below
    /// the template (`.document`, `.lines[2]`).
    pub fn compile(value: &serde_json::Value) -> Result<Template, (String, String)> {
        Self::compile_at(value, String::new())
    }

    fn compile_at(value: &serde_json::Value, path: String) -> Result<Template, (String, String)> {
        Ok(match value {
            serde_json::Value::String(s) => {
                Template::Expr(Expr::compile(s).map_err(|e| (path, e))?)
            }
            serde_json::Value::Array(items) => Template::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Self::compile_at(v, format!("{path}[{i}]")))
                    .collect::<Result<_, _>>()?,
            ),
            serde_json::Value::Object(map) => Template::Object(
                map.iter()
                    .map(|(k, v)| {
                        Ok::<_, (String, String)>((
                            k.clone(),
                            Self::compile_at(v, format!("{path}.{k}"))?,
                        ))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            literal => Template::Literal(to_val(literal)),
        })
    }

    /// The template's value for `context`.
    pub fn eval(&self, context: &Val) -> Result<Val, String> {
        Ok(match self {
            Template::Expr(e) => e.eval(context)?,
            Template::Literal(v) => v.clone(),
            Template::Array(items) => items
                .iter()
                .map(|t| t.eval(context))
                .collect::<Result<Val, String>>()?,
            Template::Object(entries) => object(
                entries
                    .iter()
                    .map(|(k, t)| Ok((string(k), t.eval(context)?)))
                    .collect::<Result<Vec<_>, String>>()?,
            ),
        })
    }

    /// The template's value without jq, when every expression in it is a plain path
    /// that `resolve` answers (with what jq would give for it); `None` otherwise. It
    /// saves building the jq view of a run, and converting values into it and back.
    pub fn eval_paths(
        &self,
        resolve: &impl Fn(&[String]) -> Option<serde_json::Value>,
    ) -> Option<serde_json::Value> {
        Some(match self {
            Template::Expr(e) => resolve(&e.path.as_ref()?.names)?,
            Template::Literal(v) => to_json(v).ok()?,
            Template::Array(items) => items
                .iter()
                .map(|t| t.eval_paths(resolve))
                .collect::<Option<_>>()?,
            Template::Object(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|(k, t)| Some((k.clone(), t.eval_paths(resolve)?)))
                    .collect::<Option<_>>()?,
            ),
        })
    }

    /// Top-level keys of an object template (for checking an action's required fields).
    pub fn keys(&self) -> Option<Vec<&str>> {
        match self {
            Template::Object(entries) => Some(entries.iter().map(|(k, _)| k.as_str()).collect()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn evaluates_paths_and_arithmetic() {
        let e = Expr::compile(".input.a + 1").unwrap();
        let out = e.eval(&to_val(&json!({"input": {"a": 41}}))).unwrap();
        assert_eq!(to_json(&out).unwrap(), json!(42));
    }

    #[test]
    fn plain_paths_answer_as_jq_does() {
        let inputs = [
            json!({"input": {"url": "u", "n": null}, "a_1": [1]}),
            json!({"input": null}),
            json!({"input": 5}),
            json!({"input": "text"}),
            json!(null),
            json!([1, 2]),
        ];
        for source in [
            ".input.url",
            ".input.n.deeper",
            ".a_1",
            ".missing.x",
            ".input",
        ] {
            let fast = Expr::compile(source).unwrap();
            assert!(fast.path.is_some(), "{source} is a plain path");
            let slow = Expr::compile(&format!("{source} | .")).unwrap();
            assert!(slow.path.is_none());
            for input in &inputs {
                let input = to_val(input);
                let (fast, slow) = (fast.eval(&input), slow.eval(&input));
                match (&fast, &slow) {
                    (Ok(f), Ok(s)) => assert_eq!(to_json(f), to_json(s), "{source} of {input}"),
                    (Err(f), Err(_)) => assert!(f.contains(source), "{f}"),
                    _ => panic!("{source} of {input}: {fast:?} against jq's {slow:?}"),
                }
            }
        }
        for source in [".", ".a[0]", ".a .b", ".\"a b\"", ".1a", "..a"] {
            assert!(plain_path(source).is_none(), "{source}");
        }
    }

    #[test]
    fn templates_of_plain_paths_evaluate_without_jq_as_with_it() {
        let context = json!({"input": {"a": {"b": [1, 2.5]}, "s": "x"}, "n": null});
        let template = Template::compile(&json!({
            "ab": ".input.a.b", "deep": ".n.x.y", "missing": ".input.zz",
            "list": [".input.s", 3, true, null], "nested": {"s": ".input.s"}
        }))
        .unwrap();
        let resolve = |names: &[String]| walk_json(&context, names);
        let fast = template
            .eval_paths(&resolve)
            .expect("every leaf is a plain path");
        let slow = to_json(&template.eval(&to_val(&context)).unwrap()).unwrap();
        assert_eq!(fast, slow);
        // Anything else is left to jq: an expression, or a path jq would refuse.
        let computed = Template::compile(&json!({"n": ".input.a.b | length"})).unwrap();
        assert!(computed.eval_paths(&resolve).is_none());
        let refused = Template::compile(&json!({"c": ".input.s.c"})).unwrap();
        assert!(refused.eval_paths(&resolve).is_none());
        assert!(refused.eval(&to_val(&context)).is_err());
    }

    #[test]
    fn values_come_back_as_the_json_they_were() {
        let value = json!({"s": "tëxt", "i": -7, "big": 18446744073709551615u64, "f": 2.5,
            "whole": 1.0, "n": null, "b": true, "l": [1, "two", {"three": [3.0]}]});
        assert_eq!(to_json(&to_val(&value)).unwrap(), value);
        let computed =
            Expr::compile("{x: (.a / 2), y: (.a * 1.5), z: 12345678901234567890123}").unwrap();
        let out = to_json(&computed.eval(&to_val(&json!({"a": 3}))).unwrap()).unwrap();
        assert_eq!(out["x"], json!(1.5));
        assert_eq!(out["y"], json!(4.5));
        assert_eq!(out["z"], json!(1.2345678901234568e22));
        let huge = Expr::compile("1e1000").unwrap().eval(&Val::Null).unwrap();
        assert!(to_json(&huge).is_err());
        let nan = Expr::compile("nan").unwrap().eval(&Val::Null).unwrap();
        assert!(
            to_json(&nan)
                .unwrap_err()
                .contains("cannot be written as JSON")
        );
        let bytes = Expr::compile("\"a\" | tobytes").unwrap().eval(&Val::Null);
        if let Ok(bytes) = bytes {
            assert!(to_json(&bytes).is_err());
        }
    }

    #[test]
    fn syntax_errors_name_the_column() {
        let err = Expr::compile(".input | (").unwrap_err();
        assert!(err.contains("column 11"), "{err}");
        let err = Expr::compile(".a | nosuch(1)").unwrap_err();
        assert!(err.contains("unknown function `nosuch`"), "{err}");
        assert!(err.contains("column 6"), "{err}");
    }

    #[test]
    fn templates_build_objects_and_keep_literals() {
        let t = Template::compile(
            &json!({"doc": ".input.d", "n": 3, "text": "\"hi\"", "l": [".input.d", true]}),
        )
        .unwrap();
        let out = t.eval(&to_val(&json!({"input": {"d": "x"}}))).unwrap();
        assert_eq!(
            to_json(&out).unwrap(),
            json!({"doc": "x", "n": 3, "text": "hi", "l": ["x", true]})
        );
        let (path, _) = Template::compile(&json!({"a": {"b": ".x |"}})).unwrap_err();
        assert_eq!(path, ".a.b");
    }

    #[test]
    fn no_output_and_runtime_errors_are_errors() {
        assert!(
            Expr::compile("empty")
                .unwrap()
                .eval(&Val::Null)
                .unwrap_err()
                .contains("no value")
        );
        assert!(
            Expr::compile("error(\"boom\")")
                .unwrap()
                .eval(&Val::Null)
                .unwrap_err()
                .contains("boom")
        );
        assert!(!Expr::compile(".missing").unwrap().test(&Val::Null).unwrap());
    }
}
