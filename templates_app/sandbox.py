"""The Jinja2 environment tenant templates run in, hardened past Jinja's own sandbox.

Jinja's ``ImmutableSandboxedEnvironment`` stops templates reaching Python internals
(``''.__class__``) and mutating data, but it does not stop a template from burning CPU or
memory: nested loops, ``'x' * 10**9``, a string doubled in a loop, ``'x'|center(10**9)``,
a macro called exponentially often. A worker rendering a batch must survive all of them, so
every render runs against a ``_Budget`` (a deadline, an operation count, size caps):

* every ``for`` loop iterates through ``guarded_iter`` (one operation per item);
* every call (functions, methods, macros, recursive loops) is counted in ``call``;
* ``+ * % **`` are intercepted (``call_binop``) and refused before they build a value over
  the caps; ``~`` goes through ``mr_concat``, which measures its operands first;
* every filter is wrapped: counted, its arguments measured before it stringifies them,
  the amplifying ones (``center``, ``indent``, ``replace``, ``batch``, ...) pre-checked;
* output captured in buffers (``{% set %}`` blocks, macros, ``{% filter %}``) is capped
  as it grows, and the renderer caps streamed output the same way.

The deadline is checked at every counted operation, so a render stops within one operation
of it; single operations are bounded by the size caps (milliseconds). Jinja folds constant
filters at compile time: wrapping filters as ``pass_context`` turns that off (a context is
never available at compile time), so ``validate`` cannot be made to allocate either.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import wraps
from itertools import islice

from jinja2 import StrictUndefined, nodes, pass_context
from jinja2.compiler import CodeGenerator
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.filters import FILTERS
from jinja2.runtime import LoopContext, Macro, Undefined, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Cycler, Joiner, Namespace, missing
from markupsafe import Markup


@dataclass(frozen=True)
class RenderLimits:
    """What one render (subject + html + text together) may use. See docs/templates.md."""

    time_seconds: float = 0.5
    max_output_chars: int = 1024 * 1024  # per rendered field
    max_value_chars: int = 1024 * 1024  # any string a template builds or stringifies
    max_sequence_items: int = 100_000  # any list a template builds
    max_operations: int = 1_000_000  # loop iterations + calls + filter calls + measured items
    max_int_bits: int = 4096


DEFAULT_LIMITS = RenderLimits()


class RenderLimitExceeded(Exception):
    """A template went over a render limit; the message says which."""


@dataclass
class _Budget:
    limits: RenderLimits
    deadline: float = 0.0
    operations: int = 0
    missing: dict[str, None] = field(default_factory=dict)  # ordered set of messages

    def __post_init__(self):
        self.deadline = time.monotonic() + self.limits.time_seconds

    def spend(self, count: int = 1) -> None:
        self.operations += count
        if self.operations > self.limits.max_operations:
            raise RenderLimitExceeded(
                f"Rendering stopped after {self.limits.max_operations:,} operations "
                "(loop iterations and calls)."
            )
        if time.monotonic() > self.deadline:
            raise RenderLimitExceeded(f"Rendering stopped after {self.limits.time_seconds:g} s.")


_CURRENT: ContextVar[_Budget | None] = ContextVar("mailroom_template_budget", default=None)


@contextmanager
def render_budget(limits: RenderLimits = DEFAULT_LIMITS) -> Iterator[_Budget]:
    """Everything rendered (or compiled) inside shares one deadline and operation count."""
    budget = _Budget(limits)
    token = _CURRENT.set(budget)
    try:
        yield budget
    finally:
        _CURRENT.reset(token)


def _budget() -> _Budget:
    budget = _CURRENT.get()
    if budget is None:
        # Rendering without limits is exactly what this module exists to prevent.
        raise RuntimeError("Tenant templates render only inside templates_app.sandbox.render_budget().")
    return budget


# -- measuring values ------------------------------------------------------------------------

def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def stringified_size(value, budget: _Budget) -> int:
    """An upper estimate of ``len(str(value))``, refused once it passes the value cap.

    Lists can hold the same big string many times over (``[s, s, s]``, ``[l] * n``), so
    ``str()`` of a small-looking value can be enormous; this walk counts every reference.
    """
    if type(value) is str or type(value) is Markup:
        return len(value)
    limit = budget.limits.max_value_chars
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif item is None or isinstance(item, bool | float):
            total += 24
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        elif isinstance(item, dict):
            budget.spend(len(item) + 1)
            total += 2 + 4 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            budget.spend(len(item) + 1)
            total += 2 + 2 * len(item)
            stack.extend(item)
        elif isinstance(item, range):
            total += 8 * len(item)
        elif isinstance(item, Namespace):
            attrs = object.__getattribute__(item, "_Namespace__attrs")
            budget.spend(len(attrs) + 1)
            total += 16 + 4 * len(attrs)
            stack.extend(attrs.values())
        else:
            total += 64
        if total > limit:
            raise RenderLimitExceeded(f"A value would be longer than {limit:,} characters.")
    return total


def _check_chars(size: int, budget: _Budget, what: str = "A value") -> None:
    if size > budget.limits.max_value_chars:
        raise RenderLimitExceeded(f"{what} would be longer than {budget.limits.max_value_chars:,} characters.")


def _check_items(size: int, budget: _Budget) -> None:
    if size > budget.limits.max_sequence_items:
        raise RenderLimitExceeded(f"A list would have more than {budget.limits.max_sequence_items:,} items.")


def _check_result(value, budget: _Budget):
    if isinstance(value, str):
        _check_chars(len(value), budget)
    elif isinstance(value, list | tuple | dict):
        _check_items(len(value), budget)
    return value


# printf-style conversions: ``%s``, ``%(name)-10.2f``; ``*`` takes the width from the arguments.
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([a-zA-Z%])")
_MAX_FORMAT_WIDTH = 10_000


def _check_percent_format(fmt: str, args, budget: _Budget) -> None:
    for match in _PERCENT_SPEC.finditer(fmt):
        for number in match.group(1, 2):
            if number == "*":
                raise RenderLimitExceeded("'*' widths in % formatting are not supported.")
            if number and int(number) > _MAX_FORMAT_WIDTH:
                raise RenderLimitExceeded(f"% format widths are limited to {_MAX_FORMAT_WIDTH:,}.")
    if not _is_scalar(args):
        stringified_size(args, budget)


def _is_scalar(value) -> bool:
    return isinstance(value, str | int | float | Undefined) or value is None or \
        (type(value) is tuple and len(value) < 8 and all(
            isinstance(v, str | int | float | Undefined) or v is None for v in value))


def _replace_size(text: str, old: str, new: str, count, budget: _Budget) -> None:
    hits = len(text) + 1 if old == "" else text.count(old)
    if _is_int(count) and count >= 0:
        hits = min(hits, count)
    _check_chars(len(text) + hits * max(len(new) - len(old), 0), budget)


# -- undefined variables ---------------------------------------------------------------------

class _SilentUndefined(Undefined):
    """What a recorded undefined turns into: absorbs further use without recording again."""

    __slots__ = ()

    def _fail_with_undefined_error(self, *args, **kwargs):
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __div__ = __rdiv__ = \
        __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = \
        __pos__ = __neg__ = __call__ = __getitem__ = __lt__ = __le__ = __gt__ = __ge__ = \
        __complex__ = __pow__ = __rpow__ = _fail_with_undefined_error

    def __int__(self) -> int:
        return 0

    def __float__(self) -> float:
        return 0.0


_SILENT = _SilentUndefined()


class RecordingUndefined(StrictUndefined):
    """``StrictUndefined`` that records the miss and carries on instead of raising.

    StrictUndefined alone stops at the first missing variable; recording lets a render name
    every missing one at once. ``is defined`` and ``|default`` never touch the value, so
    optional variables stay optional. Security errors (unsafe attributes) still raise.
    """

    __slots__ = ()

    def _record(self) -> None:
        if self._undefined_exception is not UndefinedError:
            raise self._undefined_exception(self._undefined_message)
        budget = _CURRENT.get()
        if budget is None:
            raise self._undefined_exception(self._undefined_message)
        if self._undefined_hint is None and self._undefined_obj is missing:
            message = f"Missing variable '{self._undefined_name}'"
        else:
            message = self._undefined_message
        budget.missing[message] = None

    def _fail_with_undefined_error(self, *args, **kwargs):
        self._record()
        return _SILENT

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __div__ = __rdiv__ = \
        __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = \
        __pos__ = __neg__ = __call__ = __getitem__ = __lt__ = __le__ = __gt__ = __ge__ = \
        __complex__ = __pow__ = __rpow__ = _fail_with_undefined_error

    def __getattr__(self, name):
        if name[:2] == "__":
            raise AttributeError(name)
        return self._fail_with_undefined_error()

    def __str__(self) -> str:
        self._record()
        return ""

    def __iter__(self):
        self._record()
        return iter(())

    def __len__(self) -> int:
        self._record()
        return 0

    def __bool__(self) -> bool:
        self._record()
        return False

    def __int__(self) -> int:
        self._record()
        return 0

    def __float__(self) -> float:
        self._record()
        return 0.0

    def __eq__(self, other) -> bool:
        self._record()
        return False

    def __ne__(self, other) -> bool:
        self._record()
        return True

    def __contains__(self, item) -> bool:
        self._record()
        return False

    def __hash__(self) -> int:
        return id(type(self))


# -- filters ---------------------------------------------------------------------------------

# Filters that only look at a value's structure; every other filter may stringify its
# arguments, so those are measured first.
_STRUCTURAL_FILTERS = {
    "abs", "attr", "batch", "count", "d", "default", "dictsort", "first", "float", "groupby", "int",
    "items", "last", "length", "list", "map", "max", "min", "random", "reject", "rejectattr",
    "reverse", "round", "select", "selectattr", "slice", "sort", "sum", "unique",
}


def _invoke(func, context, *args, **kwargs):
    """Call a Jinja filter with whatever it asks for first (context, eval context, environment)."""
    pass_arg = getattr(getattr(func, "jinja_pass_arg", None), "name", None)
    if pass_arg == "context":
        return func(context, *args, **kwargs)
    if pass_arg == "eval_context":
        return func(context.eval_ctx, *args, **kwargs)
    if pass_arg == "environment":
        return func(context.environment, *args, **kwargs)
    return func(*args, **kwargs)


@pass_context
def _center(context, value, width=80):
    _check_chars(width if _is_int(width) else 0, _budget())
    return _invoke(FILTERS["center"], context, value, width)


@pass_context
def _indent(context, s, width=4, first=False, blank=False):
    text = str(s)
    pad = width if _is_int(width) else len(str(width))
    _check_chars(len(text) + (text.count("\n") + 1) * max(pad, 0), _budget())
    return _invoke(FILTERS["indent"], context, s, width, first, blank)


@pass_context
def _replace(context, s, old, new, count=None):
    _replace_size(str(s), str(old), str(new), count, _budget())
    return _invoke(FILTERS["replace"], context, s, old, new, count)


@pass_context
def _format(context, value, *args, **kwargs):
    _check_percent_format(str(value), (*args, *kwargs.values()), _budget())
    return _invoke(FILTERS["format"], context, value, *args, **kwargs)


@pass_context
def _join(context, value, d="", attribute=None):
    budget = _budget()
    items = list(islice(iter(value), budget.limits.max_sequence_items + 1))
    _check_items(len(items), budget)
    _check_chars(stringified_size(items, budget) + len(str(d)) * len(items), budget)
    return _invoke(FILTERS["join"], context, items, d, attribute)


@pass_context
def _batch(context, value, linecount, fill_with=None):
    _check_items(linecount if _is_int(linecount) else 0, _budget())
    return _invoke(FILTERS["batch"], context, value, linecount, fill_with)


@pass_context
def _slice(context, value, slices, fill_with=None):
    _check_items(slices if _is_int(slices) else 0, _budget())
    return _invoke(FILTERS["slice"], context, value, slices, fill_with)


@pass_context
def _sum(context, iterable, attribute=None, start=0):
    # sum() over lists with a list start is quadratic; templates add numbers.
    if not isinstance(start, int | float):
        raise RenderLimitExceeded("sum() only adds numbers.")
    return _invoke(FILTERS["sum"], context, iterable, attribute, start)


@pass_context
def _wordwrap(context, s, width=79, break_long_words=True, wrapstring=None, break_on_hyphens=True):
    budget = _budget()
    text = str(s)
    step = max(width, 1) if _is_int(width) else 1
    # textwrap copies the rest of an over-long word for every line it cuts: quadratic.
    if len(text) * len(text) // step > 4_000_000_000:
        raise RenderLimitExceeded("wordwrap: the text is too long for this width.")
    joint = len(str(wrapstring)) if wrapstring is not None else 1
    _check_chars(len(text) + joint * (len(text) // step + 1), budget)
    return _invoke(FILTERS["wordwrap"], context, s, width, break_long_words, wrapstring, break_on_hyphens)


@pass_context
def _tojson(context, value, indent=None):
    if indent is not None and not (_is_int(indent) and 0 <= indent <= 16):
        raise RenderLimitExceeded("tojson indent must be between 0 and 16.")
    return _invoke(FILTERS["tojson"], context, value, indent)


@pass_context
def _urlize(context, value, trim_url_limit=None, nofollow=False, target=None, rel=None, extra_schemes=None):
    # target/rel are repeated for every link found.
    if len(str(target or "")) + len(str(rel or "")) > 1000:
        raise RenderLimitExceeded("urlize target/rel are too long.")
    return _invoke(FILTERS["urlize"], context, value, trim_url_limit, nofollow, target, rel, extra_schemes)


_FILTER_OVERRIDES = {
    "center": _center, "indent": _indent, "replace": _replace, "format": _format, "join": _join,
    "batch": _batch, "slice": _slice, "sum": _sum, "wordwrap": _wordwrap, "tojson": _tojson,
    "urlize": _urlize,
}


def _guard_filter(name: str, func):
    """Count the call, measure what it will stringify, cap what it returns.

    The wrapper takes the context (``pass_context``), which also keeps Jinja from running
    the filter at compile time on constant arguments.
    """
    measure = name not in _STRUCTURAL_FILTERS

    @pass_context
    @wraps(func)
    def guarded(context, *args, **kwargs):
        budget = _budget()
        budget.spend()
        if measure:
            for value in (*args, *kwargs.values()):
                if type(value) is not str and not isinstance(value, int | float | Undefined):
                    stringified_size(value, budget)
        return _check_result(_invoke(func, context, *args, **kwargs), budget)

    return guarded


# -- attributes and methods ------------------------------------------------------------------

_STR_METHODS = frozenset({
    "capitalize", "casefold", "center", "count", "endswith", "find", "index", "isalnum", "isalpha",
    "isascii", "isdecimal", "isdigit", "islower", "isnumeric", "isspace", "istitle", "isupper",
    "join", "ljust", "lower", "lstrip", "partition", "removeprefix", "removesuffix", "replace",
    "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip", "split", "splitlines",
    "startswith", "strip", "swapcase", "title", "upper", "zfill", "striptags", "unescape",
})
_DICT_METHODS = frozenset({"items", "keys", "values", "get"})
_SEQUENCE_METHODS = frozenset({"count", "index"})
# Jinja's own runtime objects a template can hold (``loop``, ``namespace()``, macros, ...).
_RUNTIME_OBJECTS = (LoopContext, Namespace, Cycler, Joiner, Macro)


def _check_pad(budget, text, width, *args, **kwargs):
    _check_chars(width if _is_int(width) else 0, budget)


def _check_str_replace(budget, text, old, new, count=-1, *args, **kwargs):
    _replace_size(text, str(old), str(new), count, budget)


_STR_CALL_CHECKS = {"center": _check_pad, "ljust": _check_pad, "rjust": _check_pad, "zfill": _check_pad,
                    "replace": _check_str_replace}


# -- code generation -------------------------------------------------------------------------

def guarded_iter(iterable: Iterable) -> Iterator:
    """What every ``for`` loop iterates: one operation per item."""
    spend = _budget().spend
    for item in iterable:
        spend()
        yield item


class GuardedCodeGenerator(CodeGenerator):
    def visit_Template(self, node, frame=None):
        # Jinja forbids custom node types; a call to an imported function is the hook.
        for loop in node.find_all(nodes.For):
            iterable = loop.iter
            if not (isinstance(iterable, nodes.Call) and isinstance(iterable.node, nodes.ImportedName)
                    and iterable.node.importname == _GUARDED_ITER):
                loop.iter = nodes.Call(nodes.ImportedName(_GUARDED_ITER), [iterable], [], None, None,
                                       lineno=iterable.lineno)
        super().visit_Template(node, frame)

    def visit_Concat(self, node, frame):
        markup = "True" if (frame.eval_ctx.volatile or frame.eval_ctx.autoescape) else "False"
        self.write(f"environment.mr_concat({markup}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def buffer(self, frame):
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.mr_buffer()")


class _GuardedBuffer(list):
    """Output captured by ``{% set %}`` blocks, macros and ``{% filter %}``, capped as it grows."""

    __slots__ = ("_chars", "_budget")

    def __init__(self, budget: _Budget):
        super().__init__()
        self._chars = 0
        self._budget = budget

    def _add(self, size: int) -> None:
        self._chars += size
        if self._chars > self._budget.limits.max_output_chars:
            raise RenderLimitExceeded(
                f"The output would be longer than {self._budget.limits.max_output_chars:,} characters."
            )

    def append(self, item) -> None:
        self._add(len(item))
        super().append(item)

    def extend(self, items) -> None:
        items = tuple(items)
        self._add(sum(len(item) for item in items))
        super().extend(items)


# -- the environment -------------------------------------------------------------------------

class MailroomSandbox(ImmutableSandboxedEnvironment):
    code_generator_class = GuardedCodeGenerator
    intercepted_binops = frozenset({"+", "*", "%", "**"})

    def __init__(self, *, autoescape: bool):
        super().__init__(
            autoescape=autoescape,
            undefined=RecordingUndefined,
            loader=None,  # no {% include %}, {% import %} or {% extends %} can resolve
            extensions=["jinja2.ext.loopcontrols"],
            keep_trailing_newline=True,  # a body renders exactly as written
            optimized=False,  # no evaluation of tenant expressions at compile time
            finalize=self._finalize,
            cache_size=0,
            auto_reload=False,
        )
        self.globals.pop("lipsum", None)  # generates text on demand; of no use in email
        self.filters = {
            name: _guard_filter(name, _FILTER_OVERRIDES.get(name, func)) for name, func in self.filters.items()
        }

    # Output: ``{{ value }}`` is finalized before it is stringified.
    @staticmethod
    def _finalize(value):
        if type(value) is str or isinstance(value, int | float | Undefined):
            return value
        stringified_size(value, _budget())
        return value

    # Attributes: plain data and Jinja's own runtime objects only.
    def is_safe_attribute(self, obj, attr, value) -> bool:
        if attr.startswith("_"):
            return False
        if isinstance(obj, str):
            return attr in _STR_METHODS
        if isinstance(obj, dict):
            return attr in _DICT_METHODS
        if isinstance(obj, list | tuple):
            return attr in _SEQUENCE_METHODS
        if isinstance(obj, Undefined):
            return True  # further use of a missing value is recorded, not resolved
        if isinstance(obj, _RUNTIME_OBJECTS):
            return super().is_safe_attribute(obj, attr, value)
        return False

    def getattr(self, obj, attribute):
        # Data first: ``order.items`` is the order's items, not dict.items.
        if isinstance(obj, dict):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        return super().getattr(obj, attribute)

    def wrap_str_format(self, value):
        # str.format / format_map stay unreachable (they are not in _STR_METHODS): format
        # specs can ask for any width. The ``format`` filter is the checked alternative.
        return None

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - Jinja's signature
        budget = _budget()
        budget.spend()
        if not __self.is_safe_callable(__obj):
            raise SecurityError(f"{__obj!r} is not safely callable")
        if isinstance(__obj, LoopContext) and args:
            # loop(children) in a recursive loop iterates outside the compiled for statement.
            args = (guarded_iter(args[0]), *args[1:])
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            name = getattr(__obj, "__name__", "")
            if name == "join" and args:
                items = list(islice(iter(args[0]), budget.limits.max_sequence_items + 1))
                _check_items(len(items), budget)
                _check_chars(stringified_size(items, budget) + len(owner) * len(items), budget)
                args = (items, *args[1:])
            elif name in _STR_CALL_CHECKS:
                try:
                    _STR_CALL_CHECKS[name](budget, owner, *args, **kwargs)
                except TypeError:
                    pass  # the call itself reports the wrong arguments
        return _check_result(__context.call(__obj, *args, **kwargs), budget)

    def call_binop(self, context, operator, left, right):
        budget = _budget()
        if operator == "*":
            if isinstance(left, str | list | tuple) and _is_int(right):
                self._check_repeat(left, right, budget)
            elif isinstance(right, str | list | tuple) and _is_int(left):
                self._check_repeat(right, left, budget)
            elif _is_int(left) and _is_int(right) and \
                    left.bit_length() + right.bit_length() > budget.limits.max_int_bits:
                raise RenderLimitExceeded(f"Numbers are limited to {budget.limits.max_int_bits} bits.")
        elif operator == "**":
            if _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1 and \
                    right * left.bit_length() > budget.limits.max_int_bits:
                raise RenderLimitExceeded(f"Numbers are limited to {budget.limits.max_int_bits} bits.")
        elif operator == "+":
            if isinstance(left, str) and isinstance(right, str):
                _check_chars(len(left) + len(right), budget)
            elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
                _check_items(len(left) + len(right), budget)
        elif operator == "%" and isinstance(left, str):
            _check_percent_format(left, right, budget)
        return self.binop_table[operator](left, right)

    @staticmethod
    def _check_repeat(sequence, times: int, budget: _Budget) -> None:
        size = len(sequence) * max(times, 0)
        if isinstance(sequence, str):
            _check_chars(size, budget)
        else:
            _check_items(size, budget)

    # Hooks called by the generated code (GuardedCodeGenerator).
    def mr_concat(self, markup: bool, items: tuple):
        budget = _budget()
        size = 0
        for item in items:
            size += len(item) if type(item) is str else stringified_size(item, budget)
        _check_chars(size, budget)
        return markup_join(items) if markup else str_join(items)

    def mr_buffer(self) -> _GuardedBuffer:
        return _GuardedBuffer(_budget())


_GUARDED_ITER = f"{__name__}.guarded_iter"
HTML_ENVIRONMENT = MailroomSandbox(autoescape=True)
TEXT_ENVIRONMENT = MailroomSandbox(autoescape=False)


def environment_for(field_name: str) -> MailroomSandbox:
    """HTML is autoescaped; subject and text are not (they are not HTML)."""
    return HTML_ENVIRONMENT if field_name == "html" else TEXT_ENVIRONMENT
