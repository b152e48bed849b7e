//! Jepsen's operations as caplab events: the part shared by the `history.edn` reader
//! (`edn.rs`) and the `jepsen.util` log reader (`jepsen_log.rs`).
//!
//! Where it sits: between those readers, which turn text into EDN values, and the history
//! builder ([`super::History`]), which checks the same rules as for caplab's own files. What
//! it maps (from Jepsen's `jepsen.history.Op` and Knossos's `cas-register` histories):
//! - `:process` an integer: a client. Anything else (`:nemesis`) is not a client operation
//!   and is skipped.
//! - `:type` `:invoke`, `:ok`, `:fail` or `:info`; `:f` `:read`, `:write` or `:cas`.
//! - `:value`: a read's value (`nil` on its invoke; `nil` read = the key is absent), a
//!   write's value, a cas's `[expected new]`. With `jepsen.independent` every value is a
//!   tuple `[key value]`; which of the two a history uses is decided by its first client
//!   operation, and every other must agree. Without tuples the whole history is one key,
//!   named [`SINGLE_KEY`].
//! - A completion that is `:fail` or `:info` may carry anything (Jepsen logs `:timed-out`):
//!   its value is not used, and its key is its invoke's. Nor is a read's invoke's value.
//! - `:time` (ns) and `:index` are used when present (all operations or none); without them
//!   (Knossos's files, the log) the position of the operation in the file stands for both.
//!   Either way the order of the file is real-time order, as for Knossos and Jepsen's own
//!   checkers: a `:time` that goes back (older Jepsen versions stamped times per thread) is
//!   raised to 1 ns after the previous one, and counted.
//! - Values are compared as text: integers in decimal, strings as they are, keywords as
//!   `:name`, anything else as its EDN.
//! - caplab's own extra keys, written by `--export edn` (`:mode`, `:session`, `:node`,
//!   `:phase`, `:version`, `:staleness-ms`), are read back.

use std::borrow::Cow;

use clojure_reader::edn::Edn;
use hashbrown::HashMap;

use super::event::{EventType, OpKind, RawEvent, RawValue};

/// The key of a history without `jepsen.independent` tuples.
pub const SINGLE_KEY: &str = "register";

/// The fields of one Jepsen operation, as EDN values.
#[derive(Debug, Default)]
pub(crate) struct JepsenOp<'a> {
    pub index: Option<&'a Edn<'a>>,
    pub time: Option<&'a Edn<'a>>,
    pub kind: Option<&'a Edn<'a>>,
    pub process: Option<&'a Edn<'a>>,
    pub f: Option<&'a Edn<'a>>,
    pub value: Option<&'a Edn<'a>>,
    pub mode: Option<&'a Edn<'a>>,
    pub session: Option<&'a Edn<'a>>,
    pub node: Option<&'a Edn<'a>>,
    pub phase: Option<&'a Edn<'a>>,
    pub version: Option<&'a Edn<'a>>,
    pub staleness_ms: Option<&'a Edn<'a>>,
}

impl<'a> JepsenOp<'a> {
    /// The fields of an operation map (`{:type :invoke ...}` or `#jepsen.history.Op{...}`).
    pub(crate) fn from_map(form: &'a Edn<'a>) -> Result<JepsenOp<'a>, String> {
        let map = match form {
            Edn::Map(m) => m,
            Edn::Tagged(_, inner) => match &**inner {
                Edn::Map(m) => m,
                other => return Err(format!("expected an operation map, found {other}")),
            },
            other => return Err(format!("expected an operation map, found {other}")),
        };
        let mut op = JepsenOp::default();
        for (k, v) in map {
            let Edn::Key(k) = k else { continue };
            let slot = match k.as_ref() {
                "index" => &mut op.index,
                "time" => &mut op.time,
                "type" => &mut op.kind,
                "process" => &mut op.process,
                "f" => &mut op.f,
                "value" => &mut op.value,
                "mode" => &mut op.mode,
                "session" => &mut op.session,
                "node" => &mut op.node,
                "phase" => &mut op.phase,
                "version" => &mut op.version,
                "staleness-ms" => &mut op.staleness_ms,
                _ => continue,
            };
            *slot = Some(v);
        }
        Ok(op)
    }
}

/// A value as caplab's text: `None` for `nil`.
pub(crate) fn text<'a>(e: &Edn<'a>) -> Option<Cow<'a, str>> {
    match e {
        Edn::Nil => None,
        Edn::Str(s) => Some(s.clone()),
        Edn::Int(i) => Some(Cow::Owned(i.to_string())),
        Edn::Key(k) => Some(Cow::Owned(format!(":{k}"))),
        Edn::Symbol(s) => Some(s.clone()),
        other => Some(Cow::Owned(other.to_string())),
    }
}

fn non_negative(e: Option<&Edn<'_>>, what: &str) -> Result<Option<u64>, String> {
    match e {
        None => Ok(None),
        Some(Edn::Int(i)) if *i >= 0 => Ok(Some(*i as u64)),
        Some(other) => Err(format!(
            "{what} must be a non-negative integer, not {other}"
        )),
    }
}

fn keyword<'e>(e: Option<&'e Edn<'_>>, what: &str) -> Result<&'e str, String> {
    match e {
        Some(Edn::Key(k)) => Ok(k.as_ref()),
        Some(other) => Err(format!("{what} must be a keyword, not {other}")),
        None => Err(format!("missing {what}")),
    }
}

/// Turns Jepsen operations, in file order, into caplab events.
#[derive(Debug, Default)]
pub(crate) struct Converter {
    /// Operations seen (clients or not): the stand-in for `:index` and `:time`.
    position: u64,
    /// Whether values are `jepsen.independent` tuples (decided by the first client op).
    independent: Option<bool>,
    /// Whether operations carry `:time` (decided by the first op).
    timed: Option<bool>,
    /// Each process's outstanding invoke's key, for completions that carry no tuple.
    pending: HashMap<u64, String>,
    /// The previous operation's time, and how many times were raised to keep file order.
    last_time: Option<u64>,
    pub(crate) times_raised: usize,
}

impl Converter {
    /// Whether the operations had no `:time` (positions stood for it).
    pub(crate) fn logical_time(&self) -> bool {
        self.timed == Some(false)
    }

    /// The event for one operation; `Ok(None)` for one that is not a client's.
    pub(crate) fn event<'a>(&mut self, op: &JepsenOp<'a>) -> Result<Option<RawEvent<'a>>, String> {
        let position = self.position;
        self.position += 1;
        let mut time = non_negative(op.time, ":time")?;
        if let (Some(t), Some(last)) = (time, self.last_time)
            && t < last
        {
            time = Some(last + 1);
            self.times_raised += 1;
        }
        if time.is_some() {
            self.last_time = time;
        }
        match (self.timed, time.is_some()) {
            (None, timed) => self.timed = Some(timed),
            (Some(true), false) => return Err("missing :time (earlier operations have one)".into()),
            (Some(false), true) => {
                return Err(":time given here but not on earlier operations".into());
            }
            _ => {}
        }
        let process = match op.process {
            Some(Edn::Int(p)) if *p >= 0 => *p as u64,
            Some(Edn::Int(p)) => return Err(format!(":process {p} is negative")),
            Some(_) => return Ok(None), // the nemesis, or another non-client
            None => return Err("missing :process".into()),
        };
        let kind = match keyword(op.kind, ":type")? {
            "invoke" => EventType::Invoke,
            "ok" => EventType::Ok,
            "fail" => EventType::Fail,
            "info" => EventType::Info,
            other => {
                return Err(format!(
                    ":type :{other} is not :invoke, :ok, :fail or :info"
                ));
            }
        };
        let f = match keyword(op.f, ":f")? {
            "read" => OpKind::Read,
            "write" => OpKind::Write,
            "cas" => OpKind::Cas,
            other => {
                return Err(format!(
                    ":f :{other} is not in the register model (:read, :write, :cas)"
                ));
            }
        };
        let nil = Edn::Nil;
        let value = op.value.unwrap_or(&nil);
        let independent = *self.independent.get_or_insert_with(|| is_tuple(f, value));
        let (key, value) = if independent {
            match value {
                Edn::Vector(kv) if kv.len() == 2 => match text(&kv[0]) {
                    Some(k) => (Some(k), &kv[1]),
                    None => return Err("a jepsen.independent key must not be nil".into()),
                },
                _ if kind != EventType::Invoke => (None, value),
                other => {
                    return Err(format!(
                        "expected a jepsen.independent [key value] tuple (as earlier operations), found {other}"
                    ));
                }
            }
        } else {
            (Some(Cow::Borrowed(SINGLE_KEY)), value)
        };
        let key = match key {
            Some(k) if independent => {
                if kind == EventType::Invoke {
                    self.pending.insert(process, k.to_string());
                } else {
                    self.pending.remove(&process);
                }
                k
            }
            Some(k) => k,
            // A completion without a tuple: its invoke's key.
            None => match self.pending.remove(&process) {
                Some(k) => Cow::Owned(k),
                None => {
                    return Err(format!(
                        "{} for process {process} with no outstanding invoke",
                        kind.as_str()
                    ));
                }
            },
        };
        // A failed or unknown completion's value is not used (Jepsen logs e.g. :timed-out),
        // nor a read's invoke's (some of Knossos's histories carry one; the read's value is
        // its completion's).
        let read_invoke = f == OpKind::Read && kind == EventType::Invoke;
        let value = if read_invoke || matches!(kind, EventType::Fail | EventType::Info) {
            RawValue::Nil
        } else {
            register_value(f, value)?
        };
        let label = |e: Option<&Edn<'a>>| e.and_then(|e| text(e));
        Ok(Some(RawEvent {
            index: non_negative(op.index, ":index")?.unwrap_or(position),
            process,
            kind,
            f,
            key,
            value,
            time: time.unwrap_or(position),
            mode: label(op.mode),
            session: label(op.session),
            node: label(op.node),
            version: non_negative(op.version, ":version")?,
            staleness_ms: non_negative(op.staleness_ms, ":staleness-ms")?,
            phase: label(op.phase),
        }))
    }
}

/// Whether the first client operation's value is a `jepsen.independent` tuple.
fn is_tuple(f: OpKind, value: &Edn<'_>) -> bool {
    let Edn::Vector(v) = value else { return false };
    match (f, v.as_slice()) {
        (OpKind::Cas, [_, Edn::Vector(pair)]) => pair.len() == 2,
        (OpKind::Cas, _) => false,
        (_, [_, _]) => true,
        _ => false,
    }
}

/// A read's or write's one value, or a cas's `[expected new]`.
fn register_value<'a>(f: OpKind, value: &Edn<'a>) -> Result<RawValue<'a>, String> {
    Ok(match (f, value) {
        (OpKind::Cas, Edn::Nil) => RawValue::Nil,
        (OpKind::Cas, Edn::Vector(pair)) if pair.len() == 2 => {
            RawValue::Pair(text(&pair[0]), text(&pair[1]))
        }
        (OpKind::Cas, other) => {
            return Err(format!("a cas's value is [expected new], not {other}"));
        }
        (_, Edn::Vector(_) | Edn::List(_) | Edn::Map(_) | Edn::Set(_)) => {
            return Err(format!(
                "a {}'s value must be one value, not {value}",
                f.as_str()
            ));
        }
        (_, v) => text(v).map_or(RawValue::Nil, RawValue::One),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(c: &mut Converter, edn: &str) -> Result<Option<crate::check::Event>, String> {
        let form = clojure_reader::edn::read_string(edn).map_err(|e| format!("{e:?}"))?;
        let op = JepsenOp::from_map(&form)?;
        Ok(c.event(&op)?.map(|e| e.to_event()))
    }

    #[test]
    fn plain_register_ops_become_one_key() -> Result<(), String> {
        let mut c = Converter::default();
        let e = convert(&mut c, "{:process 0, :type :invoke, :f :cas, :value [1 4]}")?
            .ok_or("skipped")?;
        assert_eq!(
            (e.key.as_str(), e.expected.as_deref(), e.value.as_deref()),
            (SINGLE_KEY, Some("1"), Some("4"))
        );
        assert_eq!((e.index, e.time), (0, 0));
        let skipped = convert(
            &mut c,
            "{:process :nemesis, :type :info, :f :start, :value nil}",
        )?;
        assert!(skipped.is_none());
        let e = convert(
            &mut c,
            "{:process 0, :type :info, :f :cas, :value :timed-out}",
        )?
        .ok_or("skipped")?;
        assert_eq!((e.kind, e.value, e.time), (EventType::Info, None, 2));
        let e = convert(&mut c, r#"{:process 1, :type :ok, :f :read, :value "x"}"#)?;
        assert_eq!(
            e.map(|e| e.value),
            Some(Some("x".into())),
            "the builder pairs it"
        );
        Ok(())
    }

    #[test]
    fn independent_tuples_carry_the_key() -> Result<(), String> {
        let mut c = Converter::default();
        let e = convert(&mut c, "#jepsen.history.Op{:index 7, :time 99, :type :invoke, :process 2, :f :cas, :value [3 [nil 5]]}")?
            .ok_or("skipped")?;
        assert_eq!(
            (e.key.as_str(), e.expected, e.value.as_deref()),
            ("3", None, Some("5"))
        );
        assert_eq!((e.index, e.time), (7, 99));
        let err = convert(
            &mut c,
            "{:index 8, :time 100, :type :invoke, :process 3, :f :write, :value 5}",
        );
        assert!(
            matches!(&err, Err(m) if m.contains("[key value] tuple")),
            "{err:?}"
        );
        let err = convert(
            &mut c,
            "{:index 9, :type :invoke, :process 4, :f :read, :value [1 nil]}",
        );
        assert_eq!(
            err,
            Err("missing :time (earlier operations have one)".into())
        );
        Ok(())
    }

    #[test]
    fn values_are_compared_as_text_and_bad_shapes_are_named() {
        assert_eq!(text(&Edn::Int(-3)).as_deref(), Some("-3"));
        assert_eq!(text(&Edn::Key("ok".into())).as_deref(), Some(":ok"));
        assert_eq!(text(&Edn::Nil), None);
        let mut c = Converter::default();
        let err = convert(&mut c, "{:process 0, :type :invoke, :f :add, :value 1}");
        assert!(
            matches!(&err, Err(m) if m.contains(":f :add is not in the register model")),
            "{err:?}"
        );
        let err = convert(
            &mut c,
            "{:process 0, :type :invoke, :f :write, :value {:a 1}}",
        );
        assert!(
            matches!(&err, Err(m) if m.contains("must be one value")),
            "{err:?}"
        );
        let err = convert(&mut c, "{:process 0, :type :begin, :f :write, :value 1}");
        assert!(
            matches!(&err, Err(m) if m.contains(":type :begin")),
            "{err:?}"
        );
    }
}
