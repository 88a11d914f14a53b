//! Reads YAML with positions. serde_yaml gives no spans, so we walk yaml-rust2's marked event
//! stream ourselves and build (a) a `serde_json::Value` to deserialize the raw structs from and
//! (b) an index from a path like `states.check.next[0].if` to where that node starts in the
//! file. Every later error (unknown key, unknown state, bad Rhai) looks its position up there.

use std::collections::HashMap;

use serde_json::{Map, Value};
use yaml_rust2::Yaml;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A position in a source file: 1-based line and column, and the byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
    pub offset: usize,
}

/// Where a node is: its key (for mapping entries) and its value.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodePos {
    pub key: Option<Pos>,
    pub value: Pos,
}

#[derive(Debug)]
pub struct Doc {
    pub value: Value,
    index: HashMap<String, NodePos>,
}

/// A YAML syntax or structure error with its position.
#[derive(Debug, Clone)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
    /// How to fix it, when the generic advice (indentation, `key: value`) does not apply.
    pub help: Option<&'static str>,
}

/// Largest flow file read: the demo's biggest is a few KiB.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Deepest nesting of lists and mappings (the flows need fewer than 10 levels).
pub const MAX_DEPTH: usize = 64;
/// Most nodes a file may stand for once aliases (`*name`) are expanded: a few aliases of
/// aliases ("billion laughs") would otherwise build gigabytes from a few lines.
pub const MAX_NODES: usize = 100_000;

const LIMIT_HELP: &str = "flow files are small and shallow: split a large file into several flows, \
     and use anchors (`&name`) and aliases (`*name`) only for small shared pieces";

impl Doc {
    /// Position of the value at `path` (e.g. `states.check.next[0].if`).
    pub fn pos(&self, path: &str) -> Option<Pos> {
        self.index.get(path).map(|n| n.value)
    }

    /// Position of the key at `path` (falls back to the value).
    pub fn key_pos(&self, path: &str) -> Option<Pos> {
        self.index.get(path).map(|n| n.key.unwrap_or(n.value))
    }

    /// The closest known position for `path`, walking up to its parents.
    pub fn nearest(&self, path: &str) -> Pos {
        let mut p = path.to_string();
        loop {
            if let Some(pos) = self.key_pos(&p) {
                return pos;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p.truncate(i),
                None => {
                    return self.key_pos("").unwrap_or(Pos {
                        line: 1,
                        col: 1,
                        offset: 0,
                    });
                }
            }
        }
    }
}

/// Parses one YAML document. An empty file is an empty mapping.
pub fn parse(src: &str) -> Result<Doc, YamlError> {
    if src.len() > MAX_FILE_BYTES {
        return Err(YamlError {
            pos: Pos {
                line: 1,
                col: 1,
                offset: 0,
            },
            message: format!(
                "the file has {} bytes; the limit is {MAX_FILE_BYTES} (1 MiB)",
                src.len()
            ),
            help: Some(LIMIT_HELP),
        });
    }
    let mut b = Builder::new(src);
    let mut parser = Parser::new_from_str(src);
    parser.load(&mut b, false).map_err(|e| YamlError {
        pos: b.pos(e.marker()),
        message: e.info().to_string(),
        help: None,
    })?;
    if let Some(err) = b.error.take() {
        return Err(err);
    }
    let value = b.root.take().unwrap_or(Value::Object(Map::new()));
    b.index.entry(String::new()).or_insert(NodePos {
        key: None,
        value: Pos {
            line: 1,
            col: 1,
            offset: 0,
        },
    });
    Ok(Doc { value, index: b.index })
}

enum Frame {
    Map {
        path: String,
        map: Map<String, Value>,
        key: Option<(String, Pos)>,
        anchor: usize,
    },
    Seq {
        path: String,
        items: Vec<Value>,
        anchor: usize,
    },
}

struct Builder<'a> {
    /// Char index → byte offset, because yaml-rust2 counts chars.
    char_to_byte: Vec<usize>,
    src: &'a str,
    stack: Vec<Frame>,
    root: Option<Value>,
    index: HashMap<String, NodePos>,
    /// Each anchor's value and how many nodes it stands for.
    anchors: HashMap<usize, (Value, usize)>,
    /// Nodes built so far, aliases counted expanded (see [`MAX_NODES`]).
    nodes: usize,
    /// Nodes built so far inside each open container, to size an anchored one.
    open_nodes: Vec<usize>,
    error: Option<YamlError>,
}

impl<'a> Builder<'a> {
    fn new(src: &'a str) -> Self {
        let mut char_to_byte: Vec<usize> = src.char_indices().map(|(b, _)| b).collect();
        char_to_byte.push(src.len());
        Builder {
            char_to_byte,
            src,
            stack: Vec::new(),
            root: None,
            index: HashMap::new(),
            anchors: HashMap::new(),
            nodes: 0,
            open_nodes: Vec::new(),
            error: None,
        }
    }

    fn pos(&self, m: &Marker) -> Pos {
        let offset = self.char_to_byte.get(m.index()).copied().unwrap_or(self.src.len());
        Pos {
            line: m.line().max(1),
            col: m.col() + 1,
            offset,
        }
    }

    /// The path a new child node gets, given the current container.
    fn child_path(&self) -> Option<String> {
        match self.stack.last() {
            None => Some(String::new()),
            Some(Frame::Map {
                path,
                key: Some((k, _)),
                ..
            }) => Some(if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            }),
            Some(Frame::Map { key: None, .. }) => None, // this node is a key
            Some(Frame::Seq { path, items, .. }) => Some(format!("{path}[{}]", items.len())),
        }
    }

    fn fail(&mut self, pos: Pos, message: String) {
        self.fail_with(pos, message, None);
    }

    fn fail_with(&mut self, pos: Pos, message: String, help: Option<&'static str>) {
        if self.error.is_none() {
            self.error = Some(YamlError { pos, message, help });
        }
    }

    /// Counts `n` more nodes (an alias counts what it expands to); false, with the error
    /// recorded, past [`MAX_NODES`].
    fn count(&mut self, n: usize, pos: Pos) -> bool {
        self.nodes = self.nodes.saturating_add(n);
        for open in &mut self.open_nodes {
            *open = open.saturating_add(n);
        }
        if self.nodes > MAX_NODES {
            self.fail_with(
                pos,
                format!("this file stands for more than {MAX_NODES} values once its aliases (`*name`) are expanded"),
                Some(LIMIT_HELP),
            );
            return false;
        }
        true
    }

    /// Opens a list or mapping; false, with the error recorded, past [`MAX_DEPTH`].
    fn open(&mut self, pos: Pos) -> bool {
        if self.stack.len() >= MAX_DEPTH {
            self.fail_with(
                pos,
                format!("lists and mappings are nested more than {MAX_DEPTH} levels deep here"),
                Some(LIMIT_HELP),
            );
            return false;
        }
        self.open_nodes.push(0);
        true
    }

    /// Places a finished node of `size` nodes into its parent (or as the root).
    fn push_value(&mut self, v: Value, pos: Pos, anchor: usize, size: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, (v.clone(), size));
        }
        let mut dup: Option<(String, Pos)> = None;
        match self.stack.last_mut() {
            None => self.root = Some(v),
            Some(Frame::Seq { items, .. }) => items.push(v),
            Some(Frame::Map { map, key, .. }) => match key.take() {
                None => {
                    let k = match v {
                        Value::String(s) => s,
                        Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    *key = Some((k, pos));
                }
                Some((k, kpos)) => {
                    if map.contains_key(&k) {
                        dup = Some((k, kpos));
                    } else {
                        map.insert(k, v);
                    }
                }
            },
        }
        if let Some((k, kpos)) = dup {
            self.fail(
                kpos,
                format!("`{k}` is written twice here; each name must appear only once"),
            );
        }
    }

    fn record(&mut self, path: Option<String>, pos: Pos) {
        if let Some(path) = path {
            let key = match self.stack.last() {
                Some(Frame::Map {
                    key: Some((_, kpos)), ..
                }) => Some(*kpos),
                _ => None,
            };
            self.index.insert(path, NodePos { key, value: pos });
        }
    }
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let pos = self.pos(&mark);
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                if !self.count(1, pos) {
                    return;
                }
                let path = self.child_path();
                self.record(path, pos);
                let v = if style == TScalarStyle::Plain {
                    plain_scalar(&text)
                } else {
                    Value::String(text)
                };
                self.push_value(v, pos, anchor, 1);
            }
            Event::SequenceStart(anchor, _) => {
                let path = self.child_path();
                if path.is_none() {
                    self.fail(pos, "a list cannot be used as a key".into());
                    return;
                }
                if !self.open(pos) {
                    return;
                }
                self.record(path.clone(), pos);
                self.stack.push(Frame::Seq {
                    path: path.unwrap_or_default(),
                    items: Vec::new(),
                    anchor,
                });
            }
            Event::MappingStart(anchor, _) => {
                let path = self.child_path();
                if path.is_none() {
                    self.fail(pos, "a mapping cannot be used as a key".into());
                    return;
                }
                if !self.open(pos) {
                    return;
                }
                self.record(path.clone(), pos);
                self.stack.push(Frame::Map {
                    path: path.unwrap_or_default(),
                    map: Map::new(),
                    key: None,
                    anchor,
                });
            }
            Event::SequenceEnd => {
                let inner = self.open_nodes.pop().unwrap_or(0);
                if let Some(Frame::Seq { items, anchor, .. }) = self.stack.pop()
                    && self.count(1, pos)
                {
                    self.push_value(Value::Array(items), pos, anchor, inner + 1);
                }
            }
            Event::MappingEnd => {
                let inner = self.open_nodes.pop().unwrap_or(0);
                if let Some(Frame::Map { map, anchor, .. }) = self.stack.pop()
                    && self.count(1, pos)
                {
                    self.push_value(Value::Object(map), pos, anchor, inner + 1);
                }
            }
            Event::Alias(id) => {
                let size = self.anchors.get(&id).map_or(1, |(_, n)| *n);
                // Counted before it is copied: the copy is what would exhaust memory.
                if !self.count(size, pos) {
                    return;
                }
                let path = self.child_path();
                self.record(path, pos);
                let v = self.anchors.get(&id).map_or(Value::Null, |(v, _)| v.clone());
                self.push_value(v, pos, 0, size);
            }
            _ => {}
        }
    }
}

/// Resolves a plain (unquoted) scalar the YAML 1.2 core way: null, booleans, numbers, else text.
fn plain_scalar(text: &str) -> Value {
    match Yaml::from_str(text) {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Integer(i) => Value::from(i),
        Yaml::Real(r) => r
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or(Value::String(text.to_string())),
        _ => Value::String(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_nested_nodes() {
        let src = "flow: a\nstates:\n  start:\n    next:\n      - if: x > 1\n        goto: b\n";
        let doc = parse(src).unwrap();
        assert_eq!(doc.value["states"]["start"]["next"][0]["goto"], "b");
        let p = doc.pos("states.start.next[0].if").unwrap();
        assert_eq!((p.line, p.col), (5, 13));
        let k = doc.key_pos("states.start").unwrap();
        assert_eq!((k.line, k.col), (3, 3));
        assert_eq!(&src[k.offset..k.offset + 5], "start");
    }

    #[test]
    fn scalars_resolve_like_yaml() {
        let doc = parse("a: 1\nb: true\nc: '1'\nd: ~\ne: 10:30\nf: 2.5\n").unwrap();
        assert_eq!(doc.value["a"], 1);
        assert_eq!(doc.value["b"], true);
        assert_eq!(doc.value["c"], "1");
        assert_eq!(doc.value["d"], Value::Null);
        assert_eq!(doc.value["e"], "10:30");
        assert_eq!(doc.value["f"], 2.5);
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let err = parse("states:\n  a: 1\n  a: 2\n").unwrap_err();
        assert_eq!((err.pos.line, err.pos.col), (3, 3));
        assert!(err.message.contains("twice"));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse("a:\n  b: 1\n c: 2\n").unwrap_err();
        assert!(err.pos.line >= 2, "{err:?}");
    }

    #[test]
    fn billion_laughs_depth_and_size_are_errors_not_out_of_memory() {
        let mut src =
            String::from("a: &a [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n");
        for (name, prev) in [
            ("b", "a"),
            ("c", "b"),
            ("d", "c"),
            ("e", "d"),
            ("f", "e"),
            ("g", "f"),
            ("h", "g"),
            ("i", "h"),
        ] {
            src.push_str(&format!(
                "{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        let err = parse(&src).unwrap_err();
        assert!(err.message.contains("aliases"), "{err:?}");
        assert!(err.help.is_some() && err.pos.line > 1, "{err:?}");
        // Small aliases stay fine.
        let doc = parse("x: &x {a: 1}\ny: *x\n").unwrap();
        assert_eq!(doc.value["y"]["a"], 1);

        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        let err = parse(&deep).unwrap_err();
        assert!(err.message.contains("nested more than 64"), "{err:?}");
        assert_eq!((err.pos.line, err.pos.col), (1, 65));
        assert!(parse(&format!("{}1{}", "[".repeat(60), "]".repeat(60))).is_ok());

        let big = format!("a: \"{}\"\n", "x".repeat(MAX_FILE_BYTES));
        let err = parse(&big).unwrap_err();
        assert!(err.message.contains("limit is 1048576"), "{err:?}");
    }

    #[test]
    fn unicode_offsets_are_bytes() {
        let src = "ñandú: sí\nb: x\n";
        let doc = parse(src).unwrap();
        let p = doc.key_pos("b").unwrap();
        assert_eq!(&src[p.offset..p.offset + 1], "b");
    }
}
