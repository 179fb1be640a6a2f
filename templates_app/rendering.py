"""Compiling, checking and rendering tenant templates: pure functions, no database.

Used by the template API and by the sending pipeline (``templates_app.services``), and
reusable as is by any path that holds template sources (resend, SMTP relay):

* ``validate_sources(subject=, html=, text=)`` -> ``TemplateCheck`` (syntax errors with line
  numbers per field, the variables used); never raises for bad templates;
* ``compile_template(subject=, html=, text=)`` -> ``CompiledTemplate``, or raises
  ``TemplateSyntaxInvalid`` (422 ``validation_error``, details per field);
* ``render_compiled(compiled, variables, subject_override=)`` -> ``RenderedContent``, or raises
  ``InvalidVariables`` (422, every missing variable named) or ``TemplateRenderError``
  (422 ``validation_error``: a render limit, a sandbox refusal, a runtime error);
* ``cached_template(template_id, version, load)``: compiled templates kept per
  (template id, version) in process memory; versions are immutable, so entries never go stale.

Missing variables are found two ways and reported together: statically (``jinja2.meta``:
every variable the template reads that is not tested with ``is defined`` or given a
``|default``) and while rendering (``RecordingUndefined``: a StrictUndefined that records
each miss, including missing keys of nested objects, instead of stopping at the first).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import jinja2
from jinja2 import meta, nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError

from config.api.errors import InvalidVariables, ValidationError
from templates_app.sandbox import (
    DEFAULT_LIMITS,
    RenderLimitExceeded,
    RenderLimits,
    environment_for,
    render_budget,
)

FIELDS = ("subject", "html", "text")
# Source limits, checked when a template is saved or validated.
MAX_SUBJECT_SOURCE_CHARS = 2_000
MAX_BODY_SOURCE_BYTES = 512 * 1024
# Compiling costs about 0.1 ms per token (parse, analysis, code generation, Python's compiler), so
# a field is limited in tokens (names, operators, literals, tag delimiters) before it is parsed.
# Real templates use a few thousand at most; 512 KB of "{{ a }}" would take seconds to compile.
MAX_TEMPLATE_TOKENS = 10_000
# RFC 5322 line limit; the sending path refuses longer subjects too.
MAX_RENDERED_SUBJECT_CHARS = 998

_OPTIONAL_TESTS = {"defined", "undefined"}
_OPTIONAL_FILTERS = {"default", "d"}


class TemplateSyntaxInvalid(ValidationError):
    default_message = "The template has errors."


class TemplateRenderError(ValidationError):
    default_message = "The template could not be rendered."


@dataclass(frozen=True)
class TemplateProblem:
    field: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message

    @property
    def located(self) -> str:
        """``html line 3: ...`` (or ``html: ...``), for messages that are not keyed by field."""
        return f"{self.field} line {self.line}: {self.message}" if self.line else f"{self.field}: {self.message}"


@dataclass(frozen=True)
class CompiledField:
    template: jinja2.Template
    variables: frozenset[str]  # every variable the field reads
    required: frozenset[str]  # minus those it guards with ``is defined`` / ``|default``


@dataclass(frozen=True)
class CompiledTemplate:
    subject: CompiledField | None
    html: CompiledField | None
    text: CompiledField | None
    weight: int = 0  # source characters, for the cache's memory bound

    @property
    def variables(self) -> list[str]:
        return sorted(set().union(*(f.variables for f in self._fields())))

    @property
    def required_variables(self) -> list[str]:
        return sorted(set().union(*(f.required for f in self._fields())))

    def _fields(self) -> list[CompiledField]:
        return [f for f in (self.subject, self.html, self.text) if f is not None]


@dataclass(frozen=True)
class TemplateCheck:
    errors: tuple[TemplateProblem, ...]
    variables: tuple[str, ...]
    required_variables: tuple[str, ...]

    @property
    def valid(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class RenderedContent:
    subject: str | None
    html: str | None
    text: str | None


@dataclass(frozen=True)
class RenderedTemplate:
    """What the sending pipeline gets: content plus the template id and version it came from."""

    template_id: str
    template_version: int
    subject: str
    html: str | None
    text: str | None


@dataclass(frozen=True)
class PreparedTemplate:
    """A resolved, compiled template version, ready to render many times (a batch)."""

    template_id: str
    template_version: int
    compiled: CompiledTemplate

    def render(self, variables: Mapping, *, subject_override: str | None = None,
               limits: RenderLimits | None = None) -> RenderedTemplate:
        content = render_compiled(self.compiled, variables, subject_override=subject_override,
                                  limits=limits or DEFAULT_LIMITS)
        return RenderedTemplate(template_id=self.template_id, template_version=self.template_version,
                                subject=content.subject or "", html=content.html, text=content.text)


# -- compiling -------------------------------------------------------------------------------

def _source_problem(field: str, source: str) -> TemplateProblem | None:
    if field == "subject":
        if len(source) > MAX_SUBJECT_SOURCE_CHARS:
            return TemplateProblem(field, None, f"Longer than {MAX_SUBJECT_SOURCE_CHARS:,} characters.")
    elif len(source.encode("utf-8", "surrogatepass")) > MAX_BODY_SOURCE_BYTES:
        return TemplateProblem(field, None, f"Larger than {MAX_BODY_SOURCE_BYTES // 1024} KB.")
    return None


def _refused_constructs(field: str, ast: nodes.Template) -> list[TemplateProblem]:
    """What the sandbox would refuse at render time anyway, reported at save time."""
    problems = []
    for node in ast.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        tag = {nodes.Extends: "extends", nodes.Include: "include", nodes.Import: "import",
               nodes.FromImport: "from ... import"}[type(node)]
        problems.append(TemplateProblem(field, node.lineno,
                                        f"{{% {tag} %}} is not supported: templates cannot load other templates."))
    for node in ast.find_all(nodes.Block):
        problems.append(TemplateProblem(field, node.lineno,
                                        "{% block %} is not supported: templates do not inherit."))
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        name = node.attr if isinstance(node, nodes.Getattr) else \
            node.arg.value if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str) else ""
        if name.startswith("__"):
            problems.append(TemplateProblem(field, node.lineno, f"Access to {name!r} is not allowed."))
    return sorted(problems, key=lambda p: p.line or 0)


def _optional_names(ast: nodes.Template) -> set[str]:
    optional = set()
    for test in ast.find_all(nodes.Test):
        if test.name in _OPTIONAL_TESTS and isinstance(test.node, nodes.Name):
            optional.add(test.node.name)
    for flt in ast.find_all(nodes.Filter):
        if flt.name in _OPTIONAL_FILTERS and isinstance(flt.node, nodes.Name):
            optional.add(flt.node.name)
    return optional


def _too_many_tokens(env, source: str) -> bool:
    count = 0
    for _, token_type, _ in env.lex(source):
        if token_type != "whitespace":
            count += 1
            if count > MAX_TEMPLATE_TOKENS:
                return True
    return False


def compile_field(field: str, source: str) -> tuple[CompiledField | None, list[TemplateProblem]]:
    """Parse, check and compile one field; problems instead of exceptions."""
    problem = _source_problem(field, source)
    if problem:
        return None, [problem]
    env = environment_for(field)
    try:
        if _too_many_tokens(env, source):
            return None, [TemplateProblem(field, None, f"More than {MAX_TEMPLATE_TOKENS:,} template tokens "
                                                         "(names, operators, literals); use loops or split it.")]
        # Jinja folds constant output at compile time, through the guarded finalize.
        with render_budget():
            ast = env.parse(source)
            problems = _refused_constructs(field, ast)
            if problems:
                return None, problems
            variables = frozenset(meta.find_undeclared_variables(ast) - env.globals.keys())
            required = variables - _optional_names(ast)
            code = env.compile(ast, name=field, filename=f"<{field}>")
            template = env.template_class.from_code(env, code, env.make_globals(None), None)
    except TemplateSyntaxError as exc:
        return None, [TemplateProblem(field, exc.lineno, exc.message or "Syntax error.")]
    except (RecursionError, MemoryError, SyntaxError):
        # The parser recurses per nesting level; Python limits nested blocks in the compiled code.
        return None, [TemplateProblem(field, None, "The template is nested too deeply.")]
    except Exception as exc:  # noqa: BLE001 - any failure to compile is the template's problem
        return None, [TemplateProblem(field, None, f"The template could not be compiled: {exc}")]
    return CompiledField(template=template, variables=variables, required=required), []


def validate_sources(*, subject: str | None = None, html: str | None = None,
                     text: str | None = None) -> TemplateCheck:
    errors: list[TemplateProblem] = []
    variables: set[str] = set()
    required: set[str] = set()
    for field, source in (("subject", subject), ("html", html), ("text", text)):
        if source is None:
            continue
        compiled, problems = compile_field(field, source)
        errors.extend(problems)
        if compiled is not None:
            variables |= compiled.variables
            required |= compiled.required
    return TemplateCheck(errors=tuple(errors), variables=tuple(sorted(variables)),
                         required_variables=tuple(sorted(required)))


def problems_as_details(problems) -> dict[str, list[str]]:
    details: dict[str, list[str]] = {}
    for problem in problems:
        details.setdefault(problem.field, []).append(str(problem))
    return details


def compile_template(*, subject: str | None, html: str | None, text: str | None) -> CompiledTemplate:
    compiled: dict[str, CompiledField | None] = {}
    errors: list[TemplateProblem] = []
    for field, source in (("subject", subject), ("html", html), ("text", text)):
        compiled[field] = None
        if source is not None:
            compiled[field], problems = compile_field(field, source)
            errors.extend(problems)
    if errors:
        raise TemplateSyntaxInvalid("The template has errors: " + "; ".join(
            p.located for p in errors), details=problems_as_details(errors))
    weight = sum(len(s) for s in (subject, html, text) if s)
    return CompiledTemplate(weight=weight, **compiled)


# -- rendering -------------------------------------------------------------------------------

_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")


def _template_line(exc: BaseException, field: str) -> int | None:
    """The template line of a runtime error (Jinja rewrites tracebacks to template lines)."""
    filename = f"<{field}>"
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _describe(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "Recursion is too deep (does a macro call itself?)."
    if isinstance(exc, MemoryError):
        return "Out of memory while rendering."
    if isinstance(exc, RenderLimitExceeded | SecurityError):
        return str(exc)
    return str(exc) or type(exc).__name__


def _render_field(compiled: CompiledField, variables: Mapping, limit: int) -> str:
    chunks = []
    size = 0
    # Output is streamed so that the cap stops a loop before its output is built.
    for chunk in compiled.template.generate(variables):
        size += len(chunk)
        if size > limit:
            raise RenderLimitExceeded(f"The output would be longer than {limit:,} characters.")
        chunks.append(chunk)
    return "".join(chunks)


def render_compiled(compiled: CompiledTemplate, variables: Mapping, *, subject_override: str | None = None,
                    limits: RenderLimits = DEFAULT_LIMITS) -> RenderedContent:
    """Render every field under one budget (deadline, operations, sizes).

    ``subject_override`` is used verbatim (it is not a template); the template's subject is
    then not rendered and its variables are not required.
    """
    fields = [f for f in FIELDS if getattr(compiled, f) is not None
              and not (f == "subject" and subject_override is not None)]
    statically_missing = sorted({name for f in fields for name in getattr(compiled, f).required
                                 if name not in variables})
    out: dict[str, str | None] = {"subject": None, "html": None, "text": None}
    failure: TemplateProblem | None = None
    with render_budget(limits) as budget:
        for field in fields:
            try:
                out[field] = _render_field(getattr(compiled, field), variables, limits.max_output_chars)
            except Exception as exc:  # noqa: BLE001 - tenant code: every failure is reported
                failure = TemplateProblem(field, _template_line(exc, field), _describe(exc))
                break
        missing = [f"Missing variable '{name}'" for name in statically_missing]
        missing += [message for message in budget.missing if message not in missing]
    if missing:
        # Reported before any runtime error: a missing value is the likely cause of the rest.
        raise InvalidVariables("The template could not be rendered: " + "; ".join(missing) + ".",
                               details={"variables": missing})
    if failure is not None:
        raise TemplateRenderError(f"The template could not be rendered: {failure.located}",
                                  details={"template": [failure.located]})
    if subject_override is not None:
        out["subject"] = subject_override
    elif out["subject"] is not None:
        out["subject"] = _subject_line(out["subject"])
    return RenderedContent(**out)


def _subject_line(subject: str) -> str:
    # A subject is one header line: a variable holding a line break must not start a new one.
    subject = _LINE_BREAKS.sub(" ", subject).strip()
    if not subject:
        raise TemplateRenderError("The rendered subject is empty.",
                                  details={"template": ["subject: the rendered subject is empty."]})
    if len(subject) > MAX_RENDERED_SUBJECT_CHARS:
        message = f"subject: the rendered subject is longer than {MAX_RENDERED_SUBJECT_CHARS} characters."
        raise TemplateRenderError(message, details={"template": [message]})
    return subject


def render_sources(*, subject: str | None, html: str | None, text: str | None, variables: Mapping,
                   subject_override: str | None = None, limits: RenderLimits = DEFAULT_LIMITS) -> RenderedContent:
    """Compile and render unsaved sources (no cache): for one-off paths."""
    compiled = compile_template(subject=subject, html=html, text=text)
    return render_compiled(compiled, variables, subject_override=subject_override, limits=limits)


# -- the per-process cache -------------------------------------------------------------------

class CompiledTemplateCache:
    """LRU of compiled templates keyed by (template id, version), bounded in entries and size.

    A version never changes once written, so an entry is valid for the life of the process;
    a deleted template is simply never asked for again and ages out.
    """

    def __init__(self, *, max_entries: int = 256, max_weight: int = 64 * 1024 * 1024):
        self.max_entries = max_entries
        self.max_weight = max_weight
        self._entries: OrderedDict[tuple[str, int], CompiledTemplate] = OrderedDict()
        self._weight = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> CompiledTemplate | None:
        with self._lock:
            compiled = self._entries.get(key)
            if compiled is not None:
                self._entries.move_to_end(key)
            return compiled

    def put(self, key: tuple[str, int], compiled: CompiledTemplate) -> None:
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = compiled
            self._weight += compiled.weight
            while len(self._entries) > self.max_entries or \
                    (self._weight > self.max_weight and len(self._entries) > 1):
                _, evicted = self._entries.popitem(last=False)
                self._weight -= evicted.weight

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._weight = 0

    def __len__(self) -> int:
        return len(self._entries)


COMPILED_CACHE = CompiledTemplateCache()


def cached_template(template_id: str, version: int,
                    load: Callable[[], tuple[str | None, str | None, str | None]]) -> CompiledTemplate:
    """The compiled template of a version; ``load()`` returns (subject, html, text) on a miss."""
    key = (template_id, version)
    compiled = COMPILED_CACHE.get(key)
    if compiled is None:
        # Compiled outside the lock: two threads may both compile on a cold start; one wins.
        subject, html, text = load()
        compiled = compile_template(subject=subject, html=html, text=text)
        COMPILED_CACHE.put(key, compiled)
    return compiled
