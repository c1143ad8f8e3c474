"""Data Prep calculated fields: parse an expression once, evaluate it per record.

The language is the part of Data Prep's that mapping sets commonly use: field references
(`loyalty.tier`, `items[0].sku`, `${field with spaces}`), string (`"…"`, `'…'`), number,
`true`/`false`/`null` literals, function calls, and the operators `+ - * / %`,
`== != < <= > >=`, `&& || !` with the usual precedence. Functions are listed in `FUNCTIONS`
(docs/emulator-runner.md); a name outside it is refused when the mapping set is compiled.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from emulator.runner.paths import get_path, parse_path
from emulator.runner.types import MappingError, MappingSetError

__all__ = ["FUNCTIONS", "Expression", "compile_expression", "to_datetime"]

_TOKEN: Final = re.compile(
    r"""\s*(?:
      (?P<num>\d+(?:\.\d+)?)
    | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<field>\$\{[^}]*\})
    | (?P<name>[A-Za-z_@][A-Za-z0-9_@:]*(?:\[\d+\])*(?:\.[A-Za-z0-9_@:]+(?:\[\d+\])*)*)
    | (?P<op>==|!=|<=|>=|&&|\|\||[-+*/%<>!(),])
    )""",
    re.VERBOSE,
)
_BINARY: Final = {
    "||": 1,
    "&&": 2,
    "==": 3,
    "!=": 3,
    "<": 4,
    "<=": 4,
    ">": 4,
    ">=": 4,
    "+": 5,
    "-": 5,
    "*": 6,
    "/": 6,
    "%": 6,
}


class Node:
    """A parsed expression node."""

    def eval(self, record: Mapping[str, Any]) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class _Literal(Node):
    value: Any

    def eval(self, record: Mapping[str, Any]) -> Any:
        return self.value


@dataclass(frozen=True)
class _Field(Node):
    path: tuple[str | int, ...]
    text: str

    def eval(self, record: Mapping[str, Any]) -> Any:
        return get_path(record, self.text, self.path)


@dataclass(frozen=True)
class _Call(Node):
    name: str
    fn: Callable[..., Any]
    args: tuple[Node, ...]

    def eval(self, record: Mapping[str, Any]) -> Any:
        values = [a.eval(record) for a in self.args]
        try:
            return self.fn(*values)
        except MappingError:
            raise
        except (TypeError, ValueError, ArithmeticError, IndexError) as exc:
            raise MappingError(
                "MAPPING-EXPRESSION", f"{self.name}() failed on {values!r}: {exc}"
            ) from exc


@dataclass(frozen=True)
class _Unary(Node):
    op: str
    arg: Node

    def eval(self, record: Mapping[str, Any]) -> Any:
        v = self.arg.eval(record)
        if self.op == "!":
            return not _truthy(v)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise MappingError("MAPPING-EXPRESSION", f"cannot negate {v!r}")
        return -v


@dataclass(frozen=True)
class _Binary(Node):
    op: str
    left: Node
    right: Node

    def eval(self, record: Mapping[str, Any]) -> Any:
        if self.op == "&&":
            return _truthy(self.left.eval(record)) and _truthy(self.right.eval(record))
        if self.op == "||":
            return _truthy(self.left.eval(record)) or _truthy(self.right.eval(record))
        a, b = self.left.eval(record), self.right.eval(record)
        try:
            return _apply(self.op, a, b)
        except (TypeError, ArithmeticError) as exc:
            raise MappingError(
                "MAPPING-EXPRESSION", f"cannot compute {a!r} {self.op} {b!r}: {exc}"
            ) from exc


def _apply(op: str, a: Any, b: Any) -> Any:
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if a is None or b is None:
        return None
    if op == "+":
        if isinstance(a, str) or isinstance(b, str):
            return f"{_to_text(a)}{_to_text(b)}"
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b
    if op == "%":
        return a % b
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    return a >= b


@dataclass(frozen=True)
class Expression:
    """A compiled calculated field."""

    text: str
    root: Node

    def evaluate(self, record: Mapping[str, Any]) -> Any:
        """The expression's value for one input record.

        Raises:
            MappingError: a function or operator cannot work on this record's values.
        """
        return self.root.eval(record)


def compile_expression(text: str) -> Expression:
    """Parse `text` once.

    Raises:
        MappingSetError: syntax error or a function this emulator does not know.
    """
    tokens = _tokenize(text)
    parser = _Parser(text, tokens)
    root = parser.expression(0)
    if parser.pos != len(tokens):
        raise MappingSetError(
            "MAPPING-EXPRESSION-SYNTAX",
            f"unexpected {tokens[parser.pos][1]!r} in expression {text!r}",
        )
    return Expression(text, root)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise MappingSetError(
                "MAPPING-EXPRESSION-SYNTAX",
                f"cannot read expression {text!r} at column {pos + 1}",
            )
        kind = m.lastgroup
        assert kind is not None
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, text: str, tokens: list[tuple[str, str]]) -> None:
        self.text = text
        self.tokens = tokens
        self.pos = 0

    def _fail(self, what: str) -> MappingSetError:
        return MappingSetError("MAPPING-EXPRESSION-SYNTAX", f"{what} in expression {self.text!r}")

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise self._fail("unexpected end")
        self.pos += 1
        return tok

    def expect(self, op: str) -> None:
        tok = self.take()
        if tok != ("op", op):
            raise self._fail(f"expected {op!r}, found {tok[1]!r}")

    def expression(self, min_prec: int) -> Node:
        left = self.unary()
        while True:
            tok = self.peek()
            if tok is None or tok[0] != "op" or tok[1] not in _BINARY:
                return left
            prec = _BINARY[tok[1]]
            if prec <= min_prec:
                return left
            self.pos += 1
            left = _Binary(tok[1], left, self.expression(prec))

    def unary(self) -> Node:
        tok = self.peek()
        if tok in (("op", "!"), ("op", "-")):
            self.pos += 1
            return _Unary(tok[1], self.unary())
        return self.primary()

    def primary(self) -> Node:
        kind, text = self.take()
        if kind == "num":
            return _Literal(float(text) if "." in text else int(text))
        if kind == "str":
            return _Literal(_unescape(text[1:-1]))
        if kind == "field":
            inner = text[2:-1].strip()
            return _Field(parse_path(inner), inner)
        if kind == "op" and text == "(":
            node = self.expression(0)
            self.expect(")")
            return node
        if kind == "name":
            if self.peek() == ("op", "("):
                return self.call(text)
            lowered = text.lower()
            if lowered in ("true", "false"):
                return _Literal(lowered == "true")
            if lowered == "null":
                return _Literal(None)
            return _Field(parse_path(text), text)
        raise self._fail(f"unexpected {text!r}")

    def call(self, name: str) -> Node:
        fn = FUNCTIONS.get(name.lower())
        if fn is None:
            raise MappingSetError(
                "MAPPING-FUNCTION-UNKNOWN",
                f"unknown function {name}() in expression {self.text!r}; "
                f"the emulator supports: {', '.join(sorted(FUNCTIONS))}",
            )
        self.expect("(")
        args: list[Node] = []
        if self.peek() == ("op", ")"):
            self.pos += 1
        else:
            while True:
                args.append(self.expression(0))
                tok = self.take()
                if tok == ("op", ")"):
                    break
                if tok != ("op", ","):
                    raise self._fail(f"expected ',' or ')' after an argument of {name}()")
        return _Call(name.lower(), fn, tuple(args))


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def _truthy(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() not in ("", "false", "0")
    return bool(v)


def _to_text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def to_datetime(v: Any) -> datetime | None:
    """An ISO 8601 string or epoch number (seconds, or ms above 1e11) as an aware datetime.

    Raises:
        ValueError: `v` is neither.
    """
    if v is None or v == "":
        return None
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=UTC)
    if isinstance(v, int | float) and not isinstance(v, bool):
        secs = v / 1000 if abs(v) > 1e11 else v
        return datetime.fromtimestamp(secs, UTC)
    if isinstance(v, str):
        s = v.strip()
        if re.fullmatch(r"-?\d+(\.\d+)?", s):
            return to_datetime(float(s))
        parsed = datetime.fromisoformat(s.replace("z", "Z").replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValueError(f"{v!r} is not a date")


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_JAVA_DATE: Final = (
    ("yyyy", "%Y"),
    ("yy", "%y"),
    ("MM", "%m"),
    ("dd", "%d"),
    ("HH", "%H"),
    ("mm", "%M"),
    ("ss", "%S"),
    ("SSS", "%f"),
    ("XXX", "%z"),
    ("Z", "%z"),
    ("'T'", "T"),
)


def _date(v: Any, fmt: Any = None, default: Any = None) -> str | None:
    """Adobe's `date(value[, format[, default]])` with a Java-style pattern subset."""
    if v is None or v == "":
        return _iso(to_datetime(default)) if default not in (None, "") else None
    if fmt in (None, ""):
        return _iso(to_datetime(v))
    pattern = str(fmt)
    for java, py in _JAVA_DATE:
        pattern = pattern.replace(java, py)
    parsed = datetime.strptime(_to_text(v), pattern)
    return _iso(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


def _num(v: Any, cast: Callable[[Any], Any]) -> Any:
    if v is None or v == "":
        return None
    if isinstance(v, str):
        v = v.strip()
        return cast(float(v)) if cast is int and re.search(r"[.eE]", v) else cast(v)
    return cast(v)


def _substr(s: Any, start: Any, length: Any = None) -> Any:
    if s is None:
        return None
    text = _to_text(s)
    begin = int(start)
    return text[begin:] if length is None else text[begin : begin + int(length)]


def _split(s: Any, sep: Any) -> Any:
    return None if s is None else _to_text(s).split(_to_text(sep))


def _join(sep: Any, *values: Any) -> str:
    flat: list[Any] = []
    for v in values:
        flat.extend(v if isinstance(v, list) else [v])
    return _to_text(sep).join(_to_text(v) for v in flat if v is not None)


def _decode(key: Any, *pairs: Any) -> Any:
    for i in range(0, len(pairs) - 1, 2):
        if key == pairs[i]:
            return pairs[i + 1]
    return pairs[-1] if len(pairs) % 2 == 1 else None


def _first_non_null(*values: Any) -> Any:
    return next((v for v in values if v is not None and v != ""), None)


def _str_fn(fn: Callable[[str], Any]) -> Callable[[Any], Any]:
    return lambda s: None if s is None else fn(_to_text(s))


def _size_of(v: Any) -> int:
    if v is None:
        return 0
    return len(v) if isinstance(v, list | dict | str) else 1


#: Supported Data Prep functions, by lower-case name (Adobe's names; case-insensitive here).
FUNCTIONS: Final[dict[str, Callable[..., Any]]] = {
    "concat": lambda *vs: "".join(_to_text(v) for v in vs),
    "lower": _str_fn(str.lower),
    "lcase": _str_fn(str.lower),
    "upper": _str_fn(str.upper),
    "ucase": _str_fn(str.upper),
    "trim": _str_fn(str.strip),
    "ltrim": _str_fn(str.lstrip),
    "rtrim": _str_fn(str.rstrip),
    "length": lambda s: None if s is None else len(_to_text(s)),
    "substr": _substr,
    "left": lambda s, n: None if s is None else _to_text(s)[: int(n)],
    "right": lambda s, n: None if s is None else _to_text(s)[-int(n) :] if int(n) else "",
    "split": _split,
    "join": _join,
    "replacestr": lambda s, a, b: (
        None if s is None else _to_text(s).replace(_to_text(a), _to_text(b))
    ),
    "equals": lambda a, b: a == b,
    "equalsignorecase": lambda a, b: _to_text(a).lower() == _to_text(b).lower(),
    "is_empty": lambda v: v is None or v == "" or v == [] or v == {},
    "is_null": lambda v: v is None,
    "is_not_null": lambda v: v is not None,
    "iif": lambda cond, a, b: a if _truthy(cond) else b,
    "nvl": lambda a, b: b if a is None or a == "" else a,
    "coalesce": _first_non_null,
    "decode": _decode,
    "first": lambda *vs: (
        (vs[0][0] if vs[0] else None)
        if len(vs) == 1 and isinstance(vs[0], list)
        else (vs[0] if vs else None)
    ),
    "last": lambda *vs: (
        (vs[0][-1] if vs[0] else None)
        if len(vs) == 1 and isinstance(vs[0], list)
        else (vs[-1] if vs else None)
    ),
    "size_of": _size_of,
    "to_integer": lambda v: _num(v, int),
    "to_bigint": lambda v: _num(v, int),
    "to_float": lambda v: _num(v, float),
    "to_decimal": lambda v: _num(v, float),
    "to_string": lambda v: None if v is None else _to_text(v),
    "sha256": _str_fn(lambda s: hashlib.sha256(s.encode()).hexdigest()),
    "md5": _str_fn(lambda s: hashlib.md5(s.encode(), usedforsecurity=False).hexdigest()),
    "uuid": lambda: str(uuid.uuid4()),
    "guid": lambda: str(uuid.uuid4()),
    "now": lambda: _iso(datetime.now(UTC)),
    "timestamp": lambda: int(datetime.now(UTC).timestamp() * 1000),
    "date": _date,
}
